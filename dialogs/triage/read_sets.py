"""The held-out sets already read, as training lines of the model for long messages (round
81, data/corpus_pending/README.md).

Every held-out set is written blind and read once, for the model of its day; it is a
development set after that. Its texts are the nearest thing we have to a help line's traffic,
as children and parents write it, with many long everyday messages, which the reviewed corpus
has too few of: they train the model for messages of ``model.LONG_CHARS`` or more, and its
thresholds are still chosen on the reviewed corpus's lines only (``train.Line.budgeted``), so
the corpus's budgets keep their meaning.

``python -m dialogs.triage.read_sets`` writes ``data/corpus/read_sets/{ru,en}_read_sets.tsv``
from ``tests/triage/``; a test checks that the shipped files are what it writes and that no set
newer than ``NEWEST_READ`` (the ones still to be read, never tuned on) is among them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .train import CORPUS_DIR, READ_SETS

NEWEST_READ = 44  # heldout_v44: the newest set trained on; later sets judge the model
ROOT = Path(__file__).parents[2]
# The held-out sets' signal names, in the corpus's tags.
SIGNALS = {
    "self_harm": "self-harm", "sexual_abuse": "sexual-abuse", "eating_disorder": "eating-disorder",
    "eating": "eating-disorder", "abuse_neglect": "abuse", "threat": "threat-to-life",
    "school_violence": "violence-to-others", "violence": "violence-to-others",
    "unsafe_now": "not-safe", "not_safe": "not-safe", "running_away": "running-away",
    "dangerous_challenge": "dangerous-challenge",
}
HEADER = (
    "# The held-out sets already read (development sets since), as training lines of the\n"
    "# model for long messages. Written by `python -m dialogs.triage.read_sets` from\n"
    "# tests/triage/heldout/ and heldout_v2/ to heldout_v{last}/, {loc}.yaml: each text as\n"
    "# written, tabs and line breaks as spaces; danger lines with their signal in the\n"
    "# corpus's names, safe lines with their kind. The thresholds are chosen on the reviewed\n"
    "# corpus's lines only.\n"
)


def versions(last: int = NEWEST_READ) -> list[str]:
    return ["heldout"] + [f"heldout_v{n}" for n in range(2, last + 1)]


def _row(label: str, entry: Any) -> str:
    text = entry["text"] if isinstance(entry, dict) else str(entry)
    text = " ".join(str(text).replace("\t", " ").split())
    about = entry if isinstance(entry, dict) else {}
    if label == "danger":
        signal = str(about.get("signal") or "not-safe")
        tag = SIGNALS.get(signal, signal)
    else:
        tag = str(about.get("kind") or "everyday")
    return f"{label}\t{tag}\t{text}"


def rows(locale: str, names: list[str], root: Path = ROOT) -> list[str]:
    """The training lines of one language from the named held-out versions."""
    out: list[str] = []
    for name in names:
        path = root / "tests" / "triage" / name / f"{locale}.yaml"
        if not path.exists():
            continue
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for label in ("danger", "safe"):
            out += [_row(label, e) for e in data.get(label) or []]
    return out


def render(locale: str, names: list[str] | None = None, root: Path = ROOT) -> str:
    head = HEADER.format(last=NEWEST_READ, loc=locale)
    return head + "".join(f"{r}\n" for r in rows(locale, names or versions(), root))


def write(out: Path = CORPUS_DIR / READ_SETS) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for locale in ("ru", "en"):
        (out / f"{locale}_read_sets.tsv").write_text(render(locale), encoding="utf-8")


if __name__ == "__main__":
    write()
