"""``python -m fastiou``: the ``fastiou`` command."""

import sys

from .cli import main

sys.exit(main())
