"""``python -m fastiou.cli``: the ``fastiou`` command."""

import sys

from . import main

sys.exit(main())
