"""``python -m breastlib.booktools sync [--check]`` (see
:mod:`breastlib.booktools.notebooks`) and ``python -m breastlib.booktools pretrained-study``
(see :mod:`breastlib.booktools.pretrained`)."""

import sys

if sys.argv[1:2] == ["pretrained-study"]:
    from breastlib.booktools.pretrained import main as pretrained_main

    sys.exit(pretrained_main(sys.argv[2:]))

from breastlib.booktools.notebooks import main

sys.exit(main())
