"""`python -m bot` is the `helpline` command."""

from __future__ import annotations

import sys

from bot import early_stop

if sys.argv[1:2] == ["run"]:  # before the heavy imports below: see bot.early_stop
    early_stop.catch()

from bot.cli import main as _main


def main() -> None:
    sys.exit(_main())


if __name__ == "__main__":
    main()
