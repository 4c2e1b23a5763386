"""``python -m breastlib`` is the ``breastlib`` command."""

import sys

from .cli import main

sys.exit(main())
