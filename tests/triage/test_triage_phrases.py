"""Recall and false alarms of triage on the phrase sets (tuned and held-out), per locale.

The tuned sets (phrases_*.yaml) are what the lexicons were developed against: every danger
phrase must be caught and fewer than 5% of safe phrases may raise an alarm. The held-out sets
(heldout_*.yaml) were written at the same time but never tuned against; their floors are
looser and the figures are reported, not chased.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from dialogs.taxonomy import Signal, is_category
from dialogs.triage import assess

HERE = Path(__file__).parent
LOCALES = ("ru", "en")
MAX_FALSE_ALARMS = 0.05
HELDOUT_MIN_RECALL = 0.80
HELDOUT_MAX_FALSE_ALARMS = 0.10


@dataclass
class Report:
    name: str
    danger: int = 0
    safe: int = 0
    missed: list[str] = field(default_factory=list)
    false_alarms: list[str] = field(default_factory=list)
    wrong_signal: list[str] = field(default_factory=list)
    wrong_category: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return (self.danger - len(self.missed)) / self.danger

    @property
    def false_alarm_rate(self) -> float:
        return len(self.false_alarms) / self.safe

    def summary(self) -> str:
        lines = [
            f"{self.name}: recall {self.recall:.1%} ({self.danger - len(self.missed)}/"
            f"{self.danger}), false alarms {self.false_alarm_rate:.1%} "
            f"({len(self.false_alarms)}/{self.safe})"
        ]
        lines += [f"  missed: {t}" for t in self.missed]
        lines += [f"  false alarm: {t}" for t in self.false_alarms]
        lines += [f"  wrong signal: {t}" for t in self.wrong_signal]
        lines += [f"  wrong category: {t}" for t in self.wrong_category]
        return "\n".join(lines)


def load(name: str) -> dict[str, list[Any]]:
    with (HERE / name).open(encoding="utf-8") as fh:
        data: dict[str, list[Any]] = yaml.safe_load(fh)
    return data


def evaluate(name: str, locale: str) -> Report:
    data = load(name)
    report = Report(name=name, danger=len(data["danger"]), safe=len(data["safe"]))
    for item in data["danger"]:
        result = assess(item["text"], locale)
        if not result.danger:
            report.missed.append(item["text"])
        elif Signal(item["signal"]) not in result.signals:
            report.wrong_signal.append(
                f"{item['text']} -> {[s.value for s in result.signals]}, expected {item['signal']}"
            )
    for item in data["safe"]:
        item = item if isinstance(item, dict) else {"text": item}
        result = assess(item["text"], locale)
        if result.danger:
            report.false_alarms.append(f"{item['text']} -> {list(result.matched)}")
            continue
        want = (item.get("category", result.category), item.get("risk", result.risk.value))
        got = (result.category, result.risk.value)
        if want != got:
            report.wrong_category.append(f"{item['text']} -> {got}, expected {want}")
    print(report.summary())
    return report


@pytest.mark.parametrize("locale", LOCALES)
def test_tuned_set_recall_is_total_and_false_alarms_rare(locale: str) -> None:
    report = evaluate(f"phrases_{locale}.yaml", locale)
    assert report.recall == 1.0, report.summary()
    assert report.false_alarm_rate < MAX_FALSE_ALARMS, report.summary()


@pytest.mark.parametrize("locale", LOCALES)
def test_tuned_set_signals_and_categories_are_the_expected_ones(locale: str) -> None:
    report = evaluate(f"phrases_{locale}.yaml", locale)
    assert not report.wrong_signal, report.summary()
    assert not report.wrong_category, report.summary()


@pytest.mark.parametrize("locale", LOCALES)
def test_heldout_set_stays_above_its_floor(locale: str) -> None:
    report = evaluate(f"heldout_{locale}.yaml", locale)
    assert report.recall >= HELDOUT_MIN_RECALL, report.summary()
    assert report.false_alarm_rate <= HELDOUT_MAX_FALSE_ALARMS, report.summary()


@pytest.mark.parametrize("locale", LOCALES)
def test_phrase_sets_are_big_varied_and_well_formed(locale: str) -> None:
    tuned, heldout = load(f"phrases_{locale}.yaml"), load(f"heldout_{locale}.yaml")
    assert len(tuned["danger"]) + len(tuned["safe"]) >= 150
    texts = [
        (i if isinstance(i, str) else i["text"])
        for data in (tuned, heldout)
        for i in (*data["danger"], *data["safe"])
    ]
    duplicates = {t for t in texts if texts.count(t) > 1}
    assert not duplicates, f"phrases listed twice (or in both sets): {duplicates}"
    signals = {Signal(i["signal"]) for i in tuned["danger"]}
    assert signals <= set(Signal)
    for item in tuned["safe"] + heldout["safe"]:
        if isinstance(item, dict) and "category" in item:
            assert is_category(item["category"]), item
