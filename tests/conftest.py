"""Suite-wide settings. In CI (CI=true) hypothesis runs derandomized, so a red build always
reproduces; locally every run explores new examples."""

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests.mariadb import MariaDB, mariadb_available, running_mariadb

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="module")
def mariadb() -> Iterator[MariaDB]:
    """A private MariaDB with a ROW binlog for the tests of one module (tests/mariadb.py)."""
    if not mariadb_available():
        pytest.skip("needs MariaDB server binaries (apt-get install mariadb-server)")
    with running_mariadb() as server:
        yield server
