"""WCAG 2.2 AA contrast of the console's own stylesheet, without a browser: every text colour
the console uses on every background it is shown on is at least 4.5:1 (small text).
https://www.w3.org/TR/WCAG22/#contrast-minimum, relative luminance as WCAG defines it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CSS = Path(__file__).parents[2] / "bot" / "web" / "static" / "console.css"
AA = 4.5


def _variables() -> dict[str, str]:
    root = re.search(r":root\s*\{(.*?)\}", CSS.read_text(encoding="utf-8"), re.S)
    assert root is not None
    return dict(re.findall(r"--([\w-]+):\s*(#[0-9a-fA-F]{3,6})", root.group(1)))


def _hex(value: str, names: dict[str, str]) -> str:
    found = re.fullmatch(r"var\(--([\w-]+)\)", value.strip())
    value = names[found.group(1)] if found else value.strip()
    value = {"#fff": "#ffffff"}.get(value, value)
    assert re.fullmatch(r"#[0-9a-fA-F]{6}", value), value
    return value


def _luminance(colour: str) -> float:
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _rule(selector: str) -> dict[str, str]:
    css = CSS.read_text(encoding="utf-8")
    found = re.search(re.escape(selector) + r"\s*\{([^}]*)\}", css)
    assert found is not None, selector
    return dict(re.findall(r"([\w-]+):\s*([^;]+);", found.group(1)))


@pytest.mark.parametrize("risk", ["critical", "high", "medium", "low"])
def test_every_risk_badge_is_readable(risk: str) -> None:
    names = _variables()
    rule = _rule(f".badge.risk-{risk}")
    ratio = contrast(_hex(rule["color"], names), _hex(rule["background"], names))
    assert ratio >= AA, f"{risk} badge: {ratio:.2f}:1"


# Text set in a muted or signal colour, and the backgrounds it appears on (the page, a card or
# table, a critical row, a waiting line, the bot's line in the transcript).
TEXT_ON = {
    "muted": ("bg", "card", "critical-bg"),
    "low": ("bg", "card"),  # "live" indicator
    "critical": ("bg", "card", "critical-bg"),  # signals, "offline", danger buttons
    "accent": ("bg", "card"),  # links
}


@pytest.mark.parametrize("text", sorted(TEXT_ON))
def test_muted_and_signal_text_is_readable_where_it_is_shown(text: str) -> None:
    names = _variables()
    for background in TEXT_ON[text]:
        ratio = contrast(names[text], _hex(names[background], names))
        assert ratio >= AA, f"--{text} on --{background}: {ratio:.2f}:1"


def test_the_contrast_formula_matches_wcag_examples() -> None:
    assert round(contrast("#000000", "#ffffff"), 1) == 21.0
    assert round(contrast("#767676", "#ffffff"), 2) == 4.54  # the familiar AA grey
