"""Load benchmark: `make bench` runs this file. The benchmark itself is the package
`bench.loadtest` (see its docstring, and docs/benchmarks.md); `--help` lists the options.

    .venv/bin/python bench/load.py [--users 1000] [--duration 60] [--db sqlite|pg|both]
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.loadtest.cli import main  # noqa: E402  (after the path is set)

if __name__ == "__main__":
    sys.exit(main())
