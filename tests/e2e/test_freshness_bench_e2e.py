"""`make bench-e2e` keeps measuring what it claims: a tiny run of bench/freshness.py through
`scrm local run` sends every event of each path (POST /events, a signed webhook, a MySQL commit
through the binlog bridge) and sees each one readable. It checks the harness, not the figures."""

from __future__ import annotations

import pytest

from bench import freshness
from tests.mariadb import mariadb_available

pytestmark = [pytest.mark.e2e, pytest.mark.mariadb]


def test_a_tiny_freshness_run_sees_every_event_of_each_path_readable():
    if not mariadb_available():
        pytest.skip("needs MariaDB server binaries (apt-get install mariadb-server)")
    result = freshness.run(rate=2, seconds=3)

    assert (result["rate"], result["seconds"]) == (2, 3)
    assert list(result["paths"]) == [freshness.EVENTS, freshness.WEBHOOK, freshness.MYSQL]
    for name, figures in result["paths"].items():
        assert figures is not None, name
        assert (figures["sent"], figures["refused"]) == (6, 0), (name, figures["refusals"])
        assert (figures["timed"], figures["readable"], figures["not_readable"]) == (6, 6, 0), name
        assert 0 < figures["p50_s"] <= figures["p99_s"] <= figures["max_s"], name

    lines = freshness.render(result)
    rows = [line for line in lines if line.startswith("| ") and "|---" not in line][1:]
    assert [row.split(" | ")[0].removeprefix("| ") for row in rows] == list(result["paths"])
    assert "moto" in lines[-1] and "2 events/s" in lines[0]
