"""`python -m fastiou.cli ...`: the `fastiou` command without the installed script."""

import sys

from . import main

sys.exit(main())
