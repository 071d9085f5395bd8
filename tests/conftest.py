"""Suite-wide settings. In CI (CI=true) hypothesis runs derandomized, so a red build always
reproduces; locally every run explores new examples."""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
