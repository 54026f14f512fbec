"""Measure triage on labelled phrase sets: ``helpline triage eval``.

A set is a YAML file with ``danger:`` and ``safe:`` lists of ``{text: ...}`` entries. Figures
per set: danger recall (flagged as danger), reach (danger or a check-in), false alarms (safe
flagged as danger) and check-ins on safe texts. The newest held-out set read
(``tests/triage/heldout_v47/``, written blind while round 81 was built, reported once, for
round 81 as shipped and for round 79 before it) was never tuned on before that reading.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .assess import Assessment, assess


@dataclass
class Figures:
    name: str
    danger: int = 0
    caught: int = 0
    reached: int = 0
    safe: int = 0
    false_alarms: int = 0
    check_ins: int = 0

    def rate(self, part: int, whole: int) -> float:
        return part / whole if whole else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "set": self.name,
            "danger": self.danger,
            "recall": round(self.rate(self.caught, self.danger), 3),
            "reach": round(self.rate(self.reached, self.danger), 3),
            "safe": self.safe,
            "false_alarms": round(self.rate(self.false_alarms, self.safe), 3),
            "check_ins_on_safe": round(self.rate(self.check_ins, self.safe), 3),
        }

    def line(self) -> str:
        j = self.to_json()
        return (
            f"{self.name:<28} danger {self.danger:>4}  recall {j['recall']:.3f}  "
            f"reach {j['reach']:.3f}  | safe {self.safe:>4}  false alarms "
            f"{j['false_alarms']:.3f}  check-ins {j['check_ins_on_safe']:.3f}"
        )


def _text(entry: object) -> str:
    return str(entry["text"]) if isinstance(entry, dict) else str(entry)


def evaluate(
    path: Path,
    locale: str,
    judge: Callable[[str, str], Assessment] = assess,
    name: str | None = None,
) -> Figures:
    with path.open(encoding="utf-8") as fh:
        data: dict[str, Any] = yaml.safe_load(fh)
    figures = Figures(name or path.as_posix())
    for entry in data.get("danger", []):
        verdict = judge(_text(entry), locale)
        figures.danger += 1
        figures.caught += verdict.danger
        figures.reached += verdict.danger or verdict.check_in
    for entry in data.get("safe", []):
        verdict = judge(_text(entry), locale)
        figures.safe += 1
        figures.false_alarms += verdict.danger
        figures.check_ins += verdict.check_in and not verdict.danger
    return figures


def default_sets(root: Path) -> list[tuple[Path, str]]:
    """The sets shipped with the tests: the newest held-out set read first (v47: reported
    once, a development set from the next round on), then the earlier held-out sets (v46 to
    v2 and the first: looked at, development sets now) and the older ones. A set written
    blind and not read yet is not among them."""
    base = root / "tests" / "triage"
    held_out = [f"heldout_v{n}" for n in range(47, 1, -1)] + ["heldout"]
    sets = [(base / name / f"{loc}.yaml", loc) for name in held_out for loc in ("ru", "en")]
    sets += [(base / f"heldout_{loc}.yaml", loc) for loc in ("ru", "en")]
    sets += [(base / f"phrases_{loc}.yaml", loc) for loc in ("ru", "en")]
    return [(p, loc) for p, loc in sets if p.exists()]


def report(sets: Sequence[tuple[Path, str]], root: Path) -> list[Figures]:
    return [evaluate(p, loc, name=str(p.relative_to(root))) for p, loc in sets]


def timing(sets: Sequence[tuple[Path, str]]) -> dict[str, float]:
    """Milliseconds per message over every text of the sets (the model loaded already)."""
    texts: list[tuple[str, str]] = []
    for path, locale in sets:
        with path.open(encoding="utf-8") as fh:
            data: dict[str, Any] = yaml.safe_load(fh)
        texts += [(_text(e), locale) for e in (*data.get("danger", []), *data.get("safe", []))]
    times = []
    for text, locale in texts:
        start = time.perf_counter()
        assess(text, locale)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {
        "messages": len(times),
        "median_ms": round(statistics.median(times), 3) if times else 0.0,
        "p99_ms": round(times[int(0.99 * (len(times) - 1))], 3) if times else 0.0,
    }
