"""``python -m breastlib.booktools sync [--check]``: see :mod:`breastlib.booktools.notebooks`."""

import sys

from breastlib.booktools.notebooks import main

sys.exit(main())
