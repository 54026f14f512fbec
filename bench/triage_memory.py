"""What triage's per-word caches hold after a process has read many different words.

`make bench` sends a few hundred texts, so its peak RSS never shows the caches full; a help line
that has read months of children's words (names, slang, every typo) has them full. This reads
the evaluation sets' texts, then the same texts with a letter changed in every long word (new
words, as typos make them), round after round, and prints the process's RSS, how full the
caches are and the median time per message, so that their sizes are chosen on figures.

    .venv/bin/python bench/triage_memory.py [--rounds 6]
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dialogs.triage import assess  # noqa: E402
from dialogs.triage.assess import _TRIAGE  # noqa: E402
from dialogs.triage.evaluate import _text, default_sets  # noqa: E402


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def texts() -> list[tuple[str, str]]:
    """(text, locale) of the sets `helpline triage eval` reads (`evaluate.default_sets`):
    never a held-out set kept unread for the next tuning round."""
    found: list[tuple[str, str]] = []
    for path, locale in default_sets(ROOT):
        data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for kind in ("danger", "safe"):
            found += [(_text(entry), locale) for entry in data.get(kind) or ()]
    return [(t, loc) for t, loc in found if len(t.split()) > 1]


def typo(text: str, rng: random.Random) -> str:
    """The text with one letter changed in each word of five letters or more."""
    words = text.split()
    for i, word in enumerate(words):
        if len(word) >= 5 and word.isalpha():
            j = rng.randrange(1, len(word) - 1)
            words[i] = word[:j] + rng.choice(word) + word[j + 1:]
    return " ".join(words)


def caches() -> dict[str, Any]:
    """The lru caches of the triage modules (name -> the cached function)."""
    from dialogs.triage import features, normalize, segment

    found: dict[str, Any] = {}
    for module in (normalize, features, segment):
        for name, value in vars(module).items():
            if hasattr(value, "cache_info") and value.cache_info().maxsize:
                found[f"{module.__name__.rsplit('.', 1)[-1]}.{name}"] = value
    triage = _TRIAGE
    found["matcher.expand"] = triage.matcher.expand
    if triage.model is not None:
        found["model._word_hits"] = triage.model._word_hits
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6, help="typo rounds after the sets")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    sets = texts()
    assess("привет", "ru")
    gc.collect()
    start = rss_mb()
    print(f"{len(sets)} texts; RSS after loading: {start:.1f} MB")
    print("| round | texts read | RSS growth, MB | median ms | fullest caches |")
    print("|---|---|---|---|---|")
    read = 0
    for round_no in range(args.rounds + 1):
        batch = sets if round_no == 0 else [(typo(t, rng), loc) for t, loc in sets]
        times = []
        for text, locale in batch:
            began = time.perf_counter()
            assess(text, locale)
            times.append(time.perf_counter() - began)
        read += len(batch)
        gc.collect()
        fill = sorted(
            ((fn.cache_info().currsize, name) for name, fn in caches().items()), reverse=True
        )[:3]
        fullest = ", ".join(f"{name} {size:,}" for size, name in fill)
        print(f"| {round_no} | {read:,} | {rss_mb() - start:.1f} | "
              f"{statistics.median(times) * 1000:.2f} | {fullest} |", flush=True)


if __name__ == "__main__":
    main()
