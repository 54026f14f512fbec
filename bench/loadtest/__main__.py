"""`python -m bench.loadtest` (from the repository root): the same as `bench/load.py`."""

import sys

from .cli import main

sys.argv[0] = "python -m bench.loadtest"  # for --help's usage line
sys.exit(main())
