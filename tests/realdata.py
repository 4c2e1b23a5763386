"""Where the tests find the real exam: the local mirror ``../shared/realdata`` beside the
repository (``$BREASTLIB_TEST_REALDATA`` overrides it), and a skip mark for tests that need
it (they are skipped, with the reason, on a machine without the mirror)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REALDATA = Path(os.environ.get("BREASTLIB_TEST_REALDATA")
                or Path(__file__).resolve().parents[2] / "shared" / "realdata")
needs_realdata = pytest.mark.skipif(
    not (REALDATA / "uta11" / "files.csv").is_file(),
    reason=f"the real-data mirror is absent ({REALDATA}/uta11/files.csv; set "
           "BREASTLIB_TEST_REALDATA to the folder holding uta11/)",
)
