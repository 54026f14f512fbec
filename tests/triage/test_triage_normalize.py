"""The normalisation pipeline: what a child types becomes what lexicons match."""

from __future__ import annotations

import pytest

from dialogs.triage import assess
from dialogs.triage.layout import as_typed
from dialogs.triage.normalize import EXACT, Token, tokenize


def texts(message: str, locale: str = "ru") -> list[str]:
    return [t.text for t in tokenize(message, locale)]


def has_form(token: Token, form: str) -> bool:
    return form in token.forms and EXACT + form in token.keys


def test_lower_case_yo_and_punctuation() -> None:
    assert texts("ЖИТЬ, НЕ ХОЧУ!!! Всё...") == ["жить", "не", "хочу", "все"]


@pytest.mark.parametrize(
    ("message", "locale", "form"),
    [
        ("yбить", "ru", "убить"),  # Latin y in a Cyrillic word
        ("сyицид", "ru", "суицид"),
        ("хoчу", "ru", "хочу"),  # Latin o
        ("МНОГО", "ru", "много"),
        ("kіll", "en", "kill"),  # Cyrillic і in a Latin word
        ("сut", "en", "cut"),  # Cyrillic с
    ],
)
def test_look_alike_letters_are_read_in_the_word_script(
    message: str, locale: str, form: str
) -> None:
    (token,) = tokenize(message, locale)
    assert has_form(token, form)


@pytest.mark.parametrize(
    ("message", "locale", "form"),
    [
        ("су1цид", "ru", "суицид"),
        ("р3жу", "ru", "режу"),  # 3 read as е ...
        ("3ахочу", "ru", "захочу"),  # ... and as з
        ("хо4у", "ru", "хочу"),
        ("s3lf", "en", "self"),
        ("k1ll", "en", "kill"),
        ("d1e", "en", "die"),
        ("@live", "en", "alive"),
    ],
)
def test_digits_next_to_letters_are_read_as_letters(message: str, locale: str, form: str) -> None:
    (token,) = tokenize(message, locale)
    assert has_form(token, form)


def test_numbers_stay_numbers() -> None:
    assert texts("мне 15 лет") == ["мне", "15", "лет"]


def test_repeated_letters_collapse() -> None:
    assert texts("хочууу умеретьььь") == ["хочу", "умереть"]
    (token,) = tokenize("killll", "en")
    assert {"kil", "kill"} <= token.forms


def test_emoji_are_tokens_of_their_own() -> None:
    assert texts("я🔪🩸себя ❤️👍🏽") == ["я", "🔪", "🩸", "себя", "❤", "👍"]


def test_contractions_and_slang_are_expanded() -> None:
    assert texts("I'm gonna kms", "en") == ["i", "am", "going", "to", "kill", "myself"]
    assert texts("he'll post, don't tell", "en") == ["he", "will", "post", "do", "not", "tell"]
    assert texts("he's 25", "en") == ["he", "is", "25"]
    assert texts("i want 2 die", "en") == ["i", "want", "to", "die"]
    assert texts("my step-dad", "en") == ["my", "stepdad"]


def test_stress_marks_and_zero_width_characters_are_dropped() -> None:
    assert texts("уби\u0301ть се\u200bбя") == ["убить", "себя"]


def test_russian_in_latin_letters_is_read_back_in_russian_locale_only() -> None:
    (_, hochu, zhit) = tokenize("ya hochu zhit", "ru")
    assert has_form(hochu, "хочу")
    assert "жить" in zhit.forms
    (_, hochu_en, _) = tokenize("ya hochu zhit", "en")
    assert "хочу" not in hochu_en.forms


def test_keys_hold_stems() -> None:
    (token,) = tokenize("умереть", "ru")
    assert "умерет" in token.keys
    (token,) = tokenize("killing", "en")
    assert "kill" in token.keys


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("z ,jkmit yt [jxe ;bnm", "я больше не хочу жить"),
        ("vyt cnhfiyj blnb ljvjq", "мне страшно идти домой"),
        ("Ghbdtn! Rfr pf,kjrbhjdfnm xtkjdtrf&", "Привет! Как заблокировать человека?"),
        ("vyt gkj[j/ z yt pyf. xnj ltkfnm", "мне плохо. я не знаю что делать"),
    ],
)
def test_russian_typed_with_the_english_layout_is_read_as_russian(typed: str, meant: str) -> None:
    assert as_typed(typed) == meant


@pytest.mark.parametrize(
    "text",
    [
        "i don't want to live anymore, it's too much",
        "ya hochu umeret",  # Russian in Latin letters: transliteration reads it
        "lol that's so funny",
        "gg wp",
        "check vk.com/id12345",
    ],
)
def test_english_and_transliteration_keep_their_letters(text: str) -> None:
    assert as_typed(text) == text


def test_a_child_on_the_wrong_layout_gets_the_danger_screen() -> None:
    # A comma on the Russian layout is the English layout's "?".
    result = assess("z ,jkmit yt [jxe ;bnm? ghjcnbnt dct", "ru")
    assert result.danger and result.category == "suicide"
    assert not assess("Ghbdtn! Rfr pf,kjrbhjdfnm xtkjdtrf&", "ru").danger
