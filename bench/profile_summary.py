"""Summarise py-spy collapsed stacks (`make bench ARGS="--profile DIR"`): where the bot's time
goes, as shares of all samples.

    .venv/bin/python bench/profile_summary.py var/prof/sqlite-paced.txt [--top 25]

Prints the functions with the most samples on the stack (inclusive; the project's own code and
the libraries it leans on), then the leaf functions (self time). Frames are py-spy's
"function (file:line)"; the line number is dropped so that one function counts once.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_LINE = re.compile(r":\d+\)$")


def frame_name(frame: str) -> str:
    """'handle (dialogs/engine.py:131)' -> 'handle (dialogs/engine.py)'."""
    frame = _LINE.sub(")", frame.strip())
    return re.sub(r"\(.*?/(site-packages|lib/python3\.\d+)/", "(", frame)


def summarise(path: Path) -> tuple[int, Counter[str], Counter[str]]:
    total = 0
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [frame_name(f) for f in stack.split(";") if f.strip()]
        total += count
        for name in set(frames):
            inclusive[name] += count
        if frames:
            leaf[frames[-1]] += count
    return total, inclusive, leaf


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stacks", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--match", default="", help="only frames containing this text")
    args = parser.parse_args()
    total, inclusive, leaf = summarise(args.stacks)
    if not total:
        print("no samples")
        return 1
    print(f"{total} samples in {args.stacks}")
    for title, counter in (("on the stack (inclusive)", inclusive), ("leaf (self)", leaf)):
        print(f"\n{title}:")
        rows = [(n, c) for n, c in counter.most_common() if args.match in n][: args.top]
        for name, count in rows:
            print(f"  {100 * count / total:5.1f}%  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
