"""``python -m breastlib`` is the ``breastlib`` command."""

import sys

from breastlib.cli import main

sys.exit(main())
