"""Words spelt out letter by letter, as the model reads them (`features.join_spelled`, `words`)
and as `segment.split_run` splits a run of them: a contraction before spaced letters, wider gaps
between spelt words, dotted abbreviations, a leading "i"/"я", and Latin "a" in English splits."""

from __future__ import annotations

import pytest

from dialogs.triage import assess, segment
from dialogs.triage.features import join_spelled, words


def _locale(text: str) -> str:
    return "ru" if any("а" <= ch <= "я" for ch in text.casefold()) else "en"


# --- a contraction right before spaced letters ----------------------------------------------


@pytest.mark.parametrize(
    ("message", "meant"),
    [
        ("i'm n o t s a f e", "i am not safe"),
        ("i’m n o t s a f e", "i am not safe"),  # a typographic apostrophe
        ("I'M N O T S A F E", "i am not safe"),
        ("i'm s c a r e d", "i am scared"),
        ("don't t o u c h m e", "do not touch me"),
        ("i can't b r e a t h e", "i can not breathe"),
        ("i'm  n o t  s a f e", "i am not safe"),
        ("i'm m-e", "i am me"),
    ],
)
def test_a_contraction_before_spaced_letters_keeps_its_word(message: str, meant: str) -> None:
    assert words(message, "en") == meant.split()


def test_no_spelt_run_is_glued_onto_a_word_and_its_apostrophe() -> None:
    assert join_spelled("i'm n o t s a f e") == "i'm not safe"
    assert join_spelled("i’m s c a r e d") == "i’m scared"


# --- wider gaps between spelt words -----------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "meant"),
    [
        ("о н  с т о и т  п о д  д в е р ь ю", "он стоит под дверью"),
        ("i  w a n t  t o  d i e", "i want to die"),
        ("h e  h a s  a  p l a n", "he has a plan"),  # "a" stays a word
        ("m y  d a d  h i t s  m e", "my dad hits me"),
        ("y o u  a r e  n o t h i n g", "you are nothing"),
        ("i   w a n t   t o   d i e", "i want to die"),  # any wider gap
        ("р е ж у  с е б я  к а ж д у ю  н о ч ь", "режу себя каждую ночь"),
        ("я  х о ч у  у м е р е т ь", "я хочу умереть"),
        ("о т е ц  м е н я  б ь е т", "отец меня бьет"),
        ("о н\nс т о и т", "он стоит"),  # a line break is a wider gap too
        ("о.н с.т.о.и.т п.о.д д.в.е.р.ь.ю", "он стоит под дверью"),
        ("о.н  с.т.о.и.т", "он стоит"),
        ("i-w-a-n-t--t-o--d-i-e", "i want to die"),
        ("о*н  с*т*о*и*т", "он стоит"),
        ("i w a n t  t o d i e", "i want to die"),  # a word run together is split as before
        ("ok. i  w a n t  t o  d i e lol", "ok i want to die lol"),
        ("а я  в ш о к е", "а я в шоке"),  # two one-letter words that are no word together
        # a slash (or a spaced slash) between words, letters split by spaces
        ("i w a n t / t o / d i e", "i want to die"),
        ("i/w a n t/t o/d i e", "i want to die"),
        ("я / х о ч у / у м е р е т ь", "я хочу умереть"),
        ("н е/х о ч у/ж и т ь", "не хочу жить"),
        ("h e l p  m e", "help me"),
        ("я.н.е.х.о.ч.у. ж.и.т.ь.", "я не хочу жить"),
        ("i  a m  n o t  o k", "i am not ok"),
        # harmless text in the same style
        ("i  l o v e  m y  m o m", "i love my mom"),
        ("m a r y  i s  m y  f r i e n d", "mary is my friend"),
        ("с а ш а  и  м а ш а", "саша и маша"),
        ("o m g  l o l", "omg lol"),
        ("ж и з н ь  х о р о ш а", "жизнь хороша"),
        ("ч т о  т а к о е  с у и ц и д", "что такое суицид"),
    ],
)
def test_words_spelt_out_with_wider_gaps_between_words_are_read_so(
    message: str, meant: str
) -> None:
    assert words(message, _locale(meant)) == meant.split()


@pytest.mark.parametrize(
    ("message", "meant"),
    [
        ("я у ш л а и з д о м а", "я ушла из дома"),  # no word boundaries: corpus words
        ("i w a n t t o d i e", "i want to die"),
        ("у  м  е  р  е  т  ь", "умереть"),  # one kind of gap throughout: one word
        ("a, b, c", "a b c"),
        ("x / y / z", "x y z"),
        ("мне  с т р а ш н о", "мне страшно"),
        ("я  и  ты", "я и ты"),
        ("o m g", "o m g"),  # three letters with spaces are left alone
        ("l o l", "l o l"),
        ("w t f", "w t f"),
    ],
)
def test_words_spelt_out_with_one_kind_of_gap_read_as_before(message: str, meant: str) -> None:
    assert words(message, _locale(meant)) == meant.split()


# --- two-letter dotted abbreviations ----------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "u.s.",
        "e.g. this",
        "in the u.s. army",
        "i.e.",
        "B.A. in history",
        "J.K. Rowling",
        "at 5 a.m. i woke up",
        "P.S. i love you",
        "т.е. я не знаю",
        "т.к. он болеет",
        "и т.д. и т.п.",
    ],
)
def test_two_letter_dotted_abbreviations_stay_as_they_are(text: str) -> None:
    assert join_spelled(text) == text


@pytest.mark.parametrize(
    ("message", "meant"),
    [
        ("т.е. я н е з н а ю", "т е я не знаю"),
        ("e.g. i w a n t t o d i e", "e g i want to die"),
        ("т.к. о н б ь е т м е н я", "т к он бьет меня"),
        ("B.A. s t u d e n t", "b a student"),
        # more dotted letters after two: a word spelt out, not an abbreviation
        ("о.н. б.ь.ё.т", "он бьет"),
        ("s.u.i.c.i.d.e", "suicide"),
        ("U.S.A.", "usa"),
    ],
)
def test_an_abbreviation_is_not_joined_into_the_spelt_words_around_it(
    message: str, meant: str
) -> None:
    assert words(message, _locale(meant)) == meant.split()


# --- a leading "i" / "я" ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "meant"),
    [
        ("i n s i d e", "inside"),
        ("i m p o r t a n t", "important"),
        ("i b u p r o f e n", "ibuprofen"),
        ("i n s u l i n", "insulin"),
        ("i n v i s i b l e", "invisible"),
        ("i n t e r n e t", "internet"),
        ("i g n o r e d", "ignored"),
        ("я б л о к о", "яблоко"),
        ("я д о в и т ы е", "ядовитые"),
        # not a known word as a whole: "i"/"я" is a word of its own, as before
        ("i o v e r d o s e d", "i overdosed"),
        ("я г о л о д а ю", "я голодаю"),
    ],
)
def test_a_leading_i_or_ya_is_split_off_only_when_the_whole_is_no_known_word(
    message: str, meant: str
) -> None:
    assert join_spelled(message) == meant


# --- segment: Latin "a", and endings --------------------------------------------------------


@pytest.mark.parametrize(
    ("run", "meant"),
    [
        ("iwantaknife", "i want a knife"),
        ("ihaveaplan", "i have a plan"),
        ("givemeagun", "give me a gun"),
        ("heisgoingtohurtme", "he is going to hurt me"),
        ("iamnotsafe", "i am not safe"),
        # an article never ends a run: names stay whole
        ("isabella", "isabella"),
        ("samantha", "samantha"),
        ("anastasia", "anastasia"),
    ],
)
def test_latin_a_is_a_one_letter_word_in_english_splits(run: str, meant: str) -> None:
    assert segment.split_run(run) == meant


@pytest.mark.parametrize(
    ("message", "meant"),
    [
        ("i w a n t a k n i f e", "i want a knife"),
        ("g i v e m e a g u n", "give me a gun"),
        ("i h a v e a p l a n", "i have a plan"),
    ],
)
def test_spelt_english_with_an_article_reads_as_words(message: str, meant: str) -> None:
    assert words(message, "en") == meant.split()


def test_a_piece_that_is_the_ending_of_the_word_before_it_costs_extra() -> None:
    ending = segment._ending
    assert ending("дом", "а")  # "дома": a known word of the same stem
    assert ending("так", "и")
    assert not ending("он", "а")  # right after a word of one or two letters: no extra cost
    assert not ending("снова", "я")  # "сновая" is no word: "снова я" is two
    assert not ending("want", "a")
    assert segment.split_run("онатакиушла") == "она таки ушла"
    assert segment.split_run("яушлаиздома") == "я ушла из дома"
    assert segment.split_run("уменянетножа") == "у меня нет ножа"


# --- end to end ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("i'm n o t s a f e", "en"),
        ("i  w a n t  t o  d i e", "en"),
        ("i w a n t / t o / d i e", "en"),
        ("m y  d a d  h i t s  m e", "en"),
        ("я  х о ч у  у м е р е т ь", "ru"),
        ("н е/х о ч у/ж и т ь", "ru"),
        ("о т е ц  м е н я  б ь е т", "ru"),
    ],
)
def test_spelt_out_danger_is_danger_or_a_check_in(text: str, locale: str) -> None:
    result = assess(text, locale)
    assert result.danger or result.check_in


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("o m g  l o l", "en"),
        ("m a r y  i s  m y  f r i e n d", "en"),
        ("i n s i d e", "en"),
        ("B.A. in history, e.g. the u.s. civil war", "en"),
        ("H 2 O  i s  w a t e r", "en"),
        ("C a C O 3  i s  c h a l k", "en"),
        ("exam on 12.05.2024, i  l o v e  m y  m o m", "en"),
        ("т.е. я не знаю, т.к. он болеет", "ru"),
        ("с а ш а  и  м а ш а", "ru"),
        ("я б л о к о", "ru"),
    ],
)
def test_spelt_out_harmless_text_is_not_danger(text: str, locale: str) -> None:
    assert not assess(text, locale).danger
