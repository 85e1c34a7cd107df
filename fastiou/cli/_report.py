"""What the evaluation subcommands share: writing their JSON report."""

from __future__ import annotations

import json
import sys
from typing import Any


def write_json_report(path: str, report: dict[str, Any], prog: str) -> int:
    """Write ``report`` to ``path`` as indented JSON: 0, or 1 with an error on stderr."""
    try:
        with open(path, "w") as f:
            json.dump(report, f, indent=1)
    except OSError as e:
        print(f"{prog}: error: cannot write {path}: {e}", file=sys.stderr)
        return 1
    return 0
