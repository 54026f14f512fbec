"""The public face of triage: assess(text, locale) -> Assessment, and how verdicts combine."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialogs.taxonomy import Risk, Signal, is_category
from dialogs.triage import assess, forget
from dialogs.triage.assess import _TRIAGE, as_read, read

HERE = Path(__file__).parent


def test_plain_text_is_other_low_and_not_danger() -> None:
    result = assess("привет, как дела?", "ru")
    assert (result.danger, result.check_in, result.signals, result.category, result.risk) == (
        False, False, (), "other", Risk.LOW
    )
    assert result.matched == () and result.score < 0.1


def test_assessment_is_frozen_and_typed() -> None:
    result = assess("отчим бьёт меня", "ru")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.danger = False  # type: ignore[misc]
    assert result.danger is True
    assert result.signals == (Signal.ABUSE,)
    assert isinstance(result.risk, Risk) and result.risk is Risk.CRITICAL
    assert result.category == "abuse" and is_category(result.category)


def test_to_json_is_plain_data_without_the_message() -> None:
    text = "он сказал что разошлёт мои фотки если не скину ещё"
    data = assess(text, "ru").to_json()
    assert {k: data[k] for k in ("danger", "check_in", "signals", "category", "risk")} == {
        "danger": True,
        "check_in": False,
        "signals": ["sextortion"],
        "category": "sextortion",
        "risk": "critical",
    }
    assert "ru.sextortion.threat-to-share" in data["matched"]
    assert "lexicon" in data["layers"] and isinstance(data["score"], float)
    dumped = json.dumps(data, ensure_ascii=False)
    assert "фотки" not in dumped and "разошл" not in dumped


def test_matched_names_lexicon_entries_only() -> None:
    ids = {e.id for e in _TRIAGE.matcher.lexicon.entries}
    for text in ("хочу умереть, меня травят", "my stepdad hurts me and i want to run away"):
        result = assess(text, "ru")
        assert result.matched and set(result.matched) <= ids


@pytest.mark.parametrize(
    ("text", "locale", "category", "risk"),
    [
        ("меня обзывают в чате класса", "ru", "cyberbullying", Risk.MEDIUM),
        ("взломали аккаунт", "ru", "account-security", Risk.LOW),
        ("my account got hacked", "en", "account-security", Risk.LOW),
        ("they make fun of me at school", "en", "cyberbullying", Risk.MEDIUM),
    ],
)
def test_non_danger_texts_still_get_a_category_and_risk(
    text: str, locale: str, category: str, risk: Risk
) -> None:
    result = assess(text, locale)
    assert not result.danger
    assert (result.category, result.risk) == (category, risk)


def test_a_threat_to_beat_the_child_is_never_left_alone() -> None:
    """A threat of violence is one of the issue's danger signals: at least a direct question,
    filed as a threat, never a low-risk report."""
    result = assess("угрожают побить", "ru")
    assert result.danger or result.check_in
    assert (result.category, result.risk) in (("threats", Risk.HIGH), ("threats", Risk.CRITICAL))


def test_being_told_to_kill_oneself_is_never_left_alone() -> None:
    # Bullying by the words, and the model reads danger in them: either way a person hears.
    result = assess("someone told me to kill myself", "en")
    assert result.danger or result.check_in
    assert result.risk in (Risk.HIGH, Risk.CRITICAL)


def test_running_away_alone_is_high_combined_critical() -> None:
    alone = assess("хочу сбежать из дома", "ru")
    assert alone.danger and alone.signals == (Signal.RUNNING_AWAY,)
    assert alone.risk is Risk.HIGH and alone.category == "running-away"
    combined = assess("отчим бьёт меня, хочу сбежать из дома", "ru")
    assert combined.signals == (Signal.ABUSE, Signal.RUNNING_AWAY)
    assert combined.risk is Risk.CRITICAL and combined.category == "abuse"
    street = assess("ночую на улице", "ru")
    assert street.signals == (Signal.RUNNING_AWAY,) and street.risk is Risk.CRITICAL


def test_danger_outranks_bullying_for_the_category() -> None:
    result = assess("меня травят в школе и я хочу умереть", "ru")
    assert result.category == "suicide" and result.risk is Risk.CRITICAL
    assert result.signals == (Signal.SUICIDE,)


@pytest.mark.parametrize(
    ("text", "locale", "danger"),
    [
        ("я не хочу умирать", "ru", False),
        ("я больше не хочу жить", "ru", True),
        ("не хочу жить", "ru", True),
        ("хочу умереть, но не знаю как", "ru", True),
        ("i don't want to die", "en", False),
        ("i'm not going to kill myself", "en", False),
        ("why not just kill myself", "en", True),
        ("i don't want to live anymore", "en", True),
    ],
)
def test_negation_cancels_only_what_it_negates(text: str, locale: str, danger: bool) -> None:
    assert assess(text, locale).danger is danger


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("умираю со смеху", "ru"),
        ("убить время", "ru"),
        ("убил босса в доте", "ru"),
        ("режу лук", "ru"),
        ("I'm dying to see it", "en"),
        ("this homework is killing me", "en"),
        ("killed it at the game", "en"),
    ],
)
def test_idioms_are_not_danger(text: str, locale: str) -> None:
    assert not assess(text, locale).danger


@pytest.mark.parametrize(
    "text",
    ["су1цид", "yбить себя", "сyицид", "хочууу умеретьььь", "я 🔪🩸 себя", "суицыд",
     "хочу у м е р е т ь", "думаю про с.у.и.ц.и.д"],
)
def test_disguised_spellings_are_caught(text: str) -> None:
    assert assess(text, "ru").danger


def test_both_lexicons_apply_whatever_the_locale() -> None:
    assert assess("i want to kms", "ru").signals == (Signal.SUICIDE,)
    assert assess("отчим бьёт меня", "en-US").signals == (Signal.ABUSE,)
    assert assess("хочу умереть", "ru_RU").signals == (Signal.SUICIDE,)


def test_empty_and_odd_input() -> None:
    for text in ("", "   ", "!!!", "🙂", "12345", "a" * 5000):
        assert not assess(text, "ru").danger


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=300), locale=st.sampled_from(["ru", "en", "ru-RU", "xx", ""]))
def test_any_text_gets_a_valid_verdict(text: str, locale: str) -> None:
    result = assess(text, locale)
    assert is_category(result.category)
    assert result.danger == bool(result.signals)
    json.dumps(result.to_json())


@pytest.mark.parametrize(
    ("text", "locale", "frame"),
    [
        (
            "три года назад меня травили в классе и я хотела умереть, сейчас всё хорошо",
            "ru",
            "past-resolved",
        ),
        ("when i was 12 i used to cut myself but i stopped and now im doing fine", "en", None),
        ("what does sextortion mean?", "en", "definition"),
        # Over, told the ways children tell it: "N years clean", "better now", "I see a
        # therapist", "уже два года этого нет", "хожу к психологу".
        ("two years ago i used to cut myself, but i'm okay now and i see a therapist every week",
         "en", "past-resolved"),
        ("i used to self harm in year 7, 3 years clean now", "en", "past-resolved"),
        ("в 8 классе я резала руки, уже два года этого нет, хожу к психологу", "ru",
         "past-resolved"),
        ("раньше я себя резала, но я справилась, сейчас всё хорошо", "ru", "past-resolved"),
        # A joke about something trivial, marked as one; a denial.
        ("if my mom makes me go to that wedding i'm gonna kms lmao", "en", "joke"),
        ("ещё одна контрольная по физике и я выпилюсь 🤣", "ru", "joke"),
        ("i'm not suicidal or anything, just stressed about exams", "en", "denial"),
        ("у меня нет никаких мыслей о суициде, просто поругалась с мамой", "ru", "denial"),
    ],
)
def test_danger_words_told_as_past_or_asked_about_are_not_an_alarm(
    text: str, locale: str, frame: str | None
) -> None:
    """A frame (past and over, a question about a word) takes the lexicon's authority away: no
    emergency screen; a past story still gets the direct question."""
    result = assess(text, locale)
    assert not result.danger
    assert "framed" in result.layers
    if frame is not None:
        assert frame in result.layers
    if {"past-resolved", "joke", "denial"} & set(result.layers):
        assert result.check_in


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("в фильме было как я. я правда хочу покончить с собой сегодня", "ru"),
        ("i read a book about it. i want to kill myself tonight", "en"),
        ("что такое буллинг? меня бьют каждый день в школе", "ru"),
        # A past that is not over: it came back.
        ("i used to cut myself a year ago and last night i did it again, pretty deep", "en"),
        ("раньше резалась, думала прошло, а сегодня опять порезала себя", "ru"),
        # A joke undone ("не шучу"), a denial with a "but".
        ("хочу умереть 😂 не шучу, сегодня всё решу", "ru"),
        ("меня никто не бьёт, но отчим запирает меня на балконе на всю ночь", "ru"),
        ("lol i'm not joking, i'm going to kill myself tonight", "en"),
    ],
)
def test_a_frame_in_another_sentence_does_not_hide_danger(text: str, locale: str) -> None:
    result = assess(text, locale)
    assert result.danger and "framed" not in result.layers


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        # Told short, typed fast, misspelt or in Latin letters: the child is not safe now.
        ("nt safe rn, cant talk", "en"),
        ("i really don't feel safe right now", "en"),
        ("i can't talk right now, he's listening", "en"),
        ("mne seychas ne bezopasno pomogi", "ru"),  # "y" after a vowel read as "й"
        ("мне здесь ни безапасно", "ru"),
        ("не могу говорить, он рядом", "ru"),
    ],
)
def test_not_safe_now_told_any_way_is_danger(text: str, locale: str) -> None:
    result = assess(text, locale)
    assert result.danger
    assert any(m.endswith("threat.not-safe-now") for m in result.matched)


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("is this app not safe right now?", "en"),
        ("is it not safe to post my school on tiktok?", "en"),
    ],
)
def test_a_question_about_whether_something_is_safe_is_not_danger(
    text: str, locale: str
) -> None:
    assert not any(m.endswith("threat.not-safe-now") for m in assess(text, locale).matched)


@pytest.mark.parametrize(
    ("text", "locale", "frame"),
    [
        # Over, and not about suicide or self-harm: the model decides, no check-in of its own.
        ("прошлой зимой меня шантажировали фотками, мы сходили в полицию, сейчас всё хорошо",
         "ru", "past-resolved"),
        ("i ran away from home ages ago, it was long ago and we're all good now", "en",
         "past-resolved"),
        # Safe from what the child says is not happening.
        ("nobody is blackmailing me and i never sent anyone nudes, how do i make my account "
         "private?", "en", "not-happening"),
        ("меня никто не шантажирует, просто скажите как закрыть профиль", "ru", "not-happening"),
        # A question about a word, behind a filler or about the word itself.
        ("ну типа что значит шантаж фотками?", "ru", "definition"),
        ("so like what does sextortion mean?", "en", "definition"),
        ("why do people write 'unalive' instead of dead?", "en", "definition"),
    ],
)
def test_frames_that_leave_the_decision_to_the_model(text: str, locale: str, frame: str) -> None:
    result = assess(text, locale)
    assert not result.danger
    assert frame in result.layers


def test_a_suicide_attempt_told_as_over_still_gets_the_direct_question() -> None:
    """Earlier suicidal thoughts are the strongest warning sign: a past-and-over story of them
    is asked about ("are you safe now?") whatever the model reads."""
    for text, locale in (
        ("два года назад я наглоталась таблеток, сейчас всё хорошо, хожу к психологу", "ru"),
        ("a few years ago i wanted to die, i had therapy and i'm okay now", "en"),
    ):
        result = assess(text, locale)
        assert not result.danger and result.check_in, text
        assert "past-resolved" in result.layers


def test_context_does_not_count_an_earlier_framed_message_twice() -> None:
    """A past story fired no alarm alone; an everyday message after it stays everyday."""
    past = "три года назад меня травили в классе и я хотела умереть, сейчас всё хорошо"
    assert not assess(past, "ru").danger
    assert not assess("а что задали по алгебре?", "ru", [past]).danger


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        # Asked ahead, for safety's sake or for school: answered, not met with an alarm.
        ("как оказать первую помощь если человек выпил много таблеток? у нас обж", "ru"),
        ("what should i do if someone ever asks me for nudes? just in case", "en"),
        ("for health class: what do you do if a friend says they want to kill themselves?", "en"),
        ("hypothetically, what if a stranger online threatened to leak my photos?", "en"),
    ],
)
def test_a_question_asked_ahead_is_answered_not_alarmed(text: str, locale: str) -> None:
    result = assess(text, locale)
    assert _TRIAGE.lexicon(read(text, locale)).danger  # the lexicon alone would alarm
    assert not result.danger
    assert not result.check_in  # a question asked ahead is answered, not "are you safe?"
    assert result.layers == ("framed", "asked-ahead")


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        # Asked "ahead" of what is already happening: "again", "now", "already", a "but".
        ("what do i do if he asks for nudes again?", "en"),
        ("на всякий случай: что делать, если он опять требует интимные фото?", "ru"),
        ("just in case, what do i do if someone threatens to kill me? but he already did", "en"),
        ("на всякий случай, что делать если меня сейчас шантажируют фото?", "ru"),
    ],
)
def test_a_question_about_what_is_happening_now_is_still_danger(text: str, locale: str) -> None:
    result = assess(text, locale)
    assert result.danger
    assert "framed" not in result.layers


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("по новостям сказали что в соседнем городе школьник напал с ножом на учителей", "ru"),
        ("в новостях писали, что девочку шантажировали интимными фото", "ru"),
        ("on the news they said a kid in another state was sextorted", "en"),
    ],
)
def test_the_news_about_someone_far_away_leaves_the_decision_to_the_model(
    text: str, locale: str
) -> None:
    result = assess(text, locale)
    assert _TRIAGE.lexicon(read(text, locale)).danger
    assert not result.danger
    assert "news" in result.layers


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        # The news and then me, us, now: not the news any more.
        ("по новостям показывали такое, а меня тоже шантажируют интимными фото", "ru"),
        ("i saw that on the news and now someone is blackmailing me with nudes", "en"),
        ("в новостях было про суицид, и я сегодня тоже хочу покончить с собой", "ru"),
    ],
)
def test_the_news_and_then_the_child_is_danger(text: str, locale: str) -> None:
    result = assess(text, locale)
    assert result.danger
    assert "framed" not in result.layers


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        # Over in the words children use: he was caught, we left him, they divorced; the year
        # before last.
        ("позапрошлым летом отчим меня бил, мы ушли от него, сейчас всё хорошо", "ru"),
        ("the year before last my dad beat me, we left him and now we are fine", "en"),
        ("два года назад меня шантажировали фотками, его поймали", "ru"),
        ("a few years ago a man online blackmailed me with nudes, the police caught him", "en"),
    ],
)
def test_a_danger_that_ended_is_told_as_past(text: str, locale: str) -> None:
    result = assess(text, locale)
    assert not result.danger
    assert "past-resolved" in result.layers


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        # Spelt out, the past and over reads as the lexicons read it: letters joined.
        (
            "д в а  г о д а  н а з а д  х о т е л а  у м е р е т ь ,"
            "  с е й ч а с  в с ё  х о р о ш о",
            "ru",
        ),
        ("a  f e w  y e a r s  a g o  i  w a n t e d  t o  d i e ,  i ' m  o k a y  n o w", "en"),
    ],
)
def test_a_past_told_in_spelt_out_letters_is_past(text: str, locale: str) -> None:
    result = assess(text, locale)
    assert not result.danger and result.check_in, "suicide told as past: still asked about"
    assert "past-resolved" in result.layers


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        (
            "a guy on insta asked me for pics, i blocked him and reported the account and told"
            " my dad",
            "en",
        ),
        ("какой-то взрослый просил у меня фотки, я его заблокировала и рассказала маме", "ru"),
    ],
)
def test_a_request_blocked_and_told_to_a_parent_leaves_the_decision_to_the_model(
    text: str, locale: str
) -> None:
    result = assess(text, locale)
    assert not result.danger, "handled: no alarm to the counsellors"
    assert result.layers == ("framed", "handled")


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        # It goes on: a new account, a threat of what comes next, a demand, "but".
        ("a guy asked me for pics, i blocked him but he made a new account and messages me", "en"),
        ("someone has my nudes and wants $100, i blocked him and told my mum", "en"),
        ("i blocked him and reported it, he says he'll send my photos to my school", "en"),
        ("мне написал взрослый, просил фото, я заблокировала, но он пишет с другого акка", "ru"),
        ("он требует деньги за мои фотки, я заблокировала и рассказала маме", "ru"),
        # Handled is for an online request; a danger told to a parent is still danger.
        ("i want to die, i told my mum", "en"),
        ("отчим меня бьёт, я рассказала учительнице", "ru"),
    ],
)
def test_what_goes_on_after_blocking_is_danger(text: str, locale: str) -> None:
    result = assess(text, locale)
    assert result.danger, text
    assert "handled" not in result.layers


@pytest.mark.parametrize(
    ("text", "locale", "frame"),
    [
        # A threat from "he" or "they", or a parent's made real (drunk, a knife, fear).
        ("they're gonna kill me after school, they know my address", "en", "hyperbole"),
        ("my dad is going to kill me, he's drunk and has a knife", "en", "hyperbole"),
        ("папа меня убьёт, он пьяный и бьёт маму, мне страшно", "ru", "hyperbole"),
        ("мне пишут что убьют меня у подъезда", "ru", "hyperbole"),
    ],
)
def test_a_threat_made_real_is_not_hyperbole(
    text: str, locale: str, frame: str
) -> None:
    result = assess(text, locale)
    assert result.danger
    assert frame not in result.layers


@pytest.mark.parametrize(
    ("text", "locale", "frame"),
    [
        # A parent "killing" me over a vase, a mark, a lost jumper: hyperbole.
        ("my dad is gonna kill me, i scratched his car with my bike", "en", "hyperbole"),
        ("мама меня убьёт, я разлила краску на новый ковёр", "ru", "hyperbole"),
        ("my coach is going to kill me, i missed practice again", "en", "hyperbole"),
        # A famous stranger in the feed, a song's lyrics.
        ("apparently some youtuber died of an overdose, everyone's posting about it", "en",
         "news"),
        ("слышала, что один блогер умер от передозировки, все в шоке", "ru", "news"),
        ("what's that song where he sings 'i want to die' over a happy beat?", "en", "fiction"),
        ("из какой песни строчка «хочу умереть молодым»?", "ru", "fiction"),
    ],
)
def test_hyperbole_a_song_or_the_feed_leaves_the_decision_to_the_model(
    text: str, locale: str, frame: str
) -> None:
    result = assess(text, locale)
    assert _TRIAGE.lexicon(read(text, locale)).danger
    assert not result.danger
    assert frame in result.layers


@pytest.mark.parametrize(
    ("text", "locale", "frame"),
    [
        # An eye-roll marks hyperbole as a laugh does: asked about, not alarmed on.
        ("если мне ещё раз поставят двойку по химии, я выйду в окно 🙄", "ru", "joke"),
        ("one more group project with him and i'm jumping off the roof 🙄", "en", "joke"),
        # Denials told the other way round or short.
        ("мыслей о самоубийстве у меня нет, просто устала от всего", "ru", "denial"),
        ("not suicidal, just tired of school and want to talk", "en", "denial"),
    ],
)
def test_an_eye_roll_or_a_denial_gets_the_direct_question_not_the_alarm(
    text: str, locale: str, frame: str
) -> None:
    result = assess(text, locale)
    assert _TRIAGE.lexicon(read(text, locale)).danger
    assert not result.danger and result.check_in
    assert frame in result.layers


# A lexicon concern that asks (`ask: true`, round 42): a photo sent with fear, regret or shame,
# or to a stranger, gets the direct question even where the model reads nothing; the same
# sending without any of that stays quiet.
@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("мама меня убьёт если узнает что я отправила фото тому парню", "ru"),
        ("никто не должен узнать что я скинула ему фотки", "ru"),
        ("отправила незнакомцу своё фото", "ru"),
        ("if my dad finds out i sent him those photos im dead", "en"),
    ],
)
def test_a_photo_sent_in_fear_gets_the_direct_question(text: str, locale: str) -> None:
    verdict = assess(text, locale)
    assert verdict.check_in or verdict.danger, verdict
    assert f"{locale}.intimate-images.sent-scared" in verdict.matched
    if not verdict.danger:
        assert verdict.category == "intimate-images" and verdict.risk == Risk.HIGH
        assert verdict.layers == ("lexicon",)


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("я отправила фото бабушке на день рождения", "ru"),
        ("отправил фото домашки в чат класса", "ru"),
        ("i sent my grandma a photo of my cat", "en"),
    ],
)
def test_a_photo_sent_without_fear_stays_quiet(text: str, locale: str) -> None:
    verdict = assess(text, locale)
    assert not verdict.danger and not verdict.check_in, verdict


# Told to delete the chat, with no word of who (round 63): the direct question, not the alarm
# by the lexicon alone; a teacher clearing the class chat of spam stays quiet.
@pytest.mark.parametrize(
    "text", ["он сказал удалить чат", "он попросил удалить переписку с ним",
             "она велела стирать сообщения каждый вечер"])
def test_told_to_delete_the_chat_gets_the_direct_question(text: str) -> None:
    verdict = assess(text, "ru")
    assert verdict.check_in or verdict.danger, verdict
    assert "ru.grooming.delete-chat" in verdict.matched
    if not verdict.danger:
        assert verdict.category == "grooming" and verdict.risk == Risk.HIGH


# A farewell alone, and being waited for at the entrance with no word of whom (round 67): a
# friend may be saying goodbye to the holidays, or friends may be waiting; the bot asks.
@pytest.mark.parametrize(
    ("text", "entry", "category"),
    [("прощайте.", "ru.suicide.farewell-alone", "suicide"),
     ("п р о щ а й т е", "ru.suicide.farewell-alone", "suicide"),
     ("караулят у подъезда", "ru.threat.waited-for-ask", "threats")])
def test_a_farewell_alone_or_someone_waiting_gets_the_direct_question(
    text: str, entry: str, category: str
) -> None:
    verdict = assess(text, "ru")
    assert verdict.check_in and not verdict.danger, verdict
    assert entry in verdict.matched
    assert verdict.category == category and verdict.risk == Risk.HIGH


def test_a_class_chat_cleared_of_spam_stays_quiet() -> None:
    verdict = assess("учитель сказал удалить чат класса, там спам", "ru")
    assert not verdict.danger and not verdict.check_in, verdict


def test_danger_split_between_a_long_earlier_text_and_this_one_adds_up() -> None:
    # The context layer joins only the last 1,000 characters of a long earlier text: what
    # was said next to this message is still read with it.
    story = "сегодня в школе была контрольная по алгебре и потом мы пошли в столовую. " * 40
    assert len(story) > 2000
    verdict = assess("жить", "ru", [story + "я больше не хочу"])
    assert verdict.danger and verdict.layers == ("context",)
    assert not assess("жить", "ru").danger


def test_a_message_read_at_intake_is_not_scored_again_in_its_turn() -> None:
    # The danger lane reads a message alone at intake; its turn reads it with the
    # conversation: the message alone is scored once for both.
    text = "мне кажется, что никому до меня нет дела, и сегодня было особенно тяжело"
    before = _TRIAGE._score_alone.cache_info()
    alone = assess(text, "ru")
    with_context = assess(text, "ru", ["привет", "у меня вопрос"])
    after = _TRIAGE._score_alone.cache_info()
    assert (after.misses - before.misses, after.hits - before.hits) == (1, 1)
    assert with_context.score >= alone.score


# Round 43: plain danger the lexicons had no entry for.
@pytest.mark.parametrize(
    ("text", "locale", "category"),
    [
        ("мы с сестрой не в безопасности", "ru", "threats"),
        ("нам опасно находиться дома", "ru", "threats"),
        ("we are not safe", "en", "threats"),
        ("help me not safe", "en", "threats"),
        ("how do i cover my cuts for pe", "en", "self-harm"),
        ("anyone have pro ana tips", "en", "eating-disorder"),
        ("кто со мной на марафон, тинспо кидаю в лс", "ru", "eating-disorder"),
    ],
)
def test_plain_danger_of_round_43_is_danger(text: str, locale: str, category: str) -> None:
    verdict = assess(text, locale)
    assert verdict.danger and verdict.category == category, verdict


@pytest.mark.parametrize(
    ("text", "locale", "category"),
    [
        ("помогите мне страшно", "ru", "threats"),
        ("help im scared", "en", "threats"),
        ("нет еды уже третий день, мама не приходит", "ru", "abuse"),
        ("nobody feeds us, mum is gone again", "en", "abuse"),
    ],
)
def test_fear_or_no_food_gets_the_direct_question(text: str, locale: str, category: str) -> None:
    # At least the question (the model may read danger: then the alarm).
    verdict = assess(text, locale)
    assert (verdict.check_in or verdict.danger) and verdict.category == category, verdict
    entry = "threat.scared-help" if category == "threats" else "abuse.no-food"
    assert f"{locale}.{entry}" in verdict.matched


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("я проанализировала текст и написала вывод", "ru"),
        ("дома нечего есть, пойду в магаз за чипсами", "ru"),
        ("если мы не в безопасности, куда звонить?", "ru"),
        ("we only had bread for breakfast because we ran out of cereal lol", "en"),
        ("if we are not safe online what should we do", "en"),
    ],
)
def test_the_same_words_in_everyday_use_stay_quiet(text: str, locale: str) -> None:
    verdict = assess(text, locale)
    assert not verdict.danger and not verdict.check_in, verdict


@pytest.mark.parametrize(
    "text",
    ["a" * 1500 + " " * 1200, " " * 1500 + "b" * 1200, "я" * 2500, ("слово " * 500).strip()],
)
def test_long_texts_of_odd_shapes_are_read_with_their_context(text: str) -> None:
    # The context layer cuts long texts at word boundaries: a text with no word boundary, or
    # only spaces where a cut falls, is read, not a crash.
    for earlier in (text, "привет"):
        verdict = assess(text, "ru", [earlier])
        assert not verdict.danger


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("what happens if someone shares someone else's photos without permission? nothing's "
         "happened, just curious", "en"),
        ("someone said they had my pics, turned out it was a scam, they didnt have anything",
         "en"),
        ("Ничего плохого не случилось, просто хочу понять, как объяснить дочке про шантаж "
         "фотками в интернете", "ru"),
        ("мне писали что выложат фотки если не заплачу, это был развод, у меня нет никаких "
         "таких фото", "ru"),
        ("меня в позапрошлом году шантажировали фотками, мы с мамой пошли в полицию, того "
         "парня нашли", "ru"),
    ],
)
def test_blackmail_told_as_not_happening_or_over_is_not_an_alarm(text: str, locale: str) -> None:
    # Round 46: where the lexicons read blackmail, the frames `not-happened` and
    # `past-resolved` hold, and the model decides.
    verdict = assess(text, locale)
    assert not verdict.danger, verdict
    assert not verdict.signals or "framed" in verdict.layers, verdict


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("he says he'll post my pics unless i pay, nothing has happened yet but im scared", "en"),
        ("i cut my arm really bad and then went downstairs like nothing happened", "en"),
        ("он пишет что разошлёт мои фото, пока ничего не случилось, но мне страшно", "ru"),
        ("порезала руки и пошла ужинать как ни в чём не бывало, будто ничего не было", "ru"),
        ("cut too deep need help", "en"),
        ("порезала слишком глубоко, не знаю что делать", "ru"),
    ],
)
def test_danger_is_not_undone_by_nothing_happened_yet_or_acting_normal(
    text: str, locale: str
) -> None:
    verdict = assess(text, locale)
    assert verdict.danger, verdict


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("did you see the deepfake of the president lol", "en"),
        ("we learned about deepfakes in computing, scary how real they look", "en"),
        ("в новостях рассказывали про дипфейки, страшно как похоже", "ru"),
        ("сделала фейковый аккаунт для фан-страницы", "ru"),
    ],
)
def test_deepfakes_as_a_topic_stay_quiet(text: str, locale: str) -> None:
    # Round 47b: only nudes of a child faked are danger, not the word.
    verdict = assess(text, locale)
    assert not verdict.danger, verdict


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("took 12 of my nan's sleeping tablets", "en"),
        ("my sister took a whole box of nurofen and is sick", "en"),
        ("наглоталась 10 штук цитрамона", "ru"),
        ("сожрал упаковку нурофена", "ru"),
        # number words and "съела" in Latin letters (round 52)
        ("i swallowed fifteen paracetamol", "en"),
        ("took a dozen of mums sleeping pills", "en"),
        ("выпила штук тридцать таблеток снотворного", "ru"),
        ("ya sjela 20 tabletok", "ru"),
        ("ya s'ela pachku ibuprofena", "ru"),
    ],
)
def test_an_overdose_told_by_number_or_name_is_danger(text: str, locale: str) -> None:
    verdict = assess(text, locale)
    assert verdict.danger and verdict.category == "substance-use", verdict
    assert any("overdose." in m for m in verdict.matched), verdict


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("how many paracetamol can a 12 year old take? i took 2 for my headache", "en"),
        ("it took 20 minutes to find the paracetamol in the cupboard", "en"),
        ("i take 500 mg paracetamol when i have a fever", "en"),
        ("мама выпила 5 таблеток от давления за день, это нормально?", "ru"),
        ("сколько таблеток парацетамола можно ребенку 12 лет", "ru"),
        ("it took ten minutes to find the ibuprofen", "en"),
        ("my dog ate ten of my ibuprofen, what do i do", "en"),
    ],
)
def test_ordinary_doses_stay_quiet(text: str, locale: str) -> None:
    verdict = assess(text, locale)
    assert not any(m.endswith("overdose.took-pills") for m in verdict.matched), verdict
    assert not verdict.danger, verdict


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("my grandma is 80 and takes a laxative every morning, is that ok?", "en"),
        ("in the game my dog got killed and then i was next lol", "en"),
        ("бабушке 75 лет, ей врач прописал слабительное", "ru"),
    ],
)
def test_laxatives_for_the_old_and_pets_in_games_stay_quiet(text: str, locale: str) -> None:
    # Round 50's entries do not fire on an age or a game.
    verdict = assess(text, locale)
    assert not any(m.endswith(("laxatives-count", "pet-threat")) for m in verdict.matched)
    assert not verdict.danger, verdict


def test_sat_is_read_as_ate_only_before_a_quantity() -> None:
    # Round 52: "s'ela" comes back from Latin letters as "села" (sat); the entry wants it right
    # before a quantity or a number, so sitting on a packet is not an overdose.
    assert "ru.overdose.ate-pills-latin" in assess("ya s'ela pachku nurofena", "ru").matched
    sat = assess("села на пачку таблеток и раздавила её", "ru")
    assert "ru.overdose.ate-pills-latin" not in sat.matched, sat


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("someone keeps following me on insta, who is it", "en"),
        ("my cat follows me everywhere lol", "en"),
        ("кто-то следит за мной в инсте, странно", "ru"),
        ("меня случайно заперли в туалете на перемене, посмеялись и открыли", "ru"),
        ("меня закрыли в комнате, ветрянка, карантин", "ru"),
        ("завтра в школе будет учебная тревога, эвакуация", "ru"),
        # round 55
        ("the delivery guy is banging on the door lol", "en"),
        ("кот ломится в дверь всю ночь", "ru"),
        ("i locked myself in my room to study", "en"),
        ("my mum said im dead if i'm late again", "en"),
        ("lost my phone in the dark at the party", "en"),
        ("we lost the match last night", "en"),
        ("there was a story about a boy lost in the woods who survived 3 days", "en"),
        ("пишу рассказ про девочку которая потерялась в лесу", "ru"),
        ("уберу всех пауков в комнате", "ru"),
        ("my dog drank some bleach what do i do", "en"),
        # round 59
        ("меня заперли дома до конца каникул, наказали за двойки", "ru"),
        ("что за собачий кайф, про который все пишут? хочу поговорить с сыном", "ru"),
        ("про руфинг завтра будет передача", "ru"),
        ("мой брат работает курьером, уйти не дают даже на выходной", "ru"),
        ("help someone is trying to get in to my account", "en"),
        ("couldn't wake up for school, slept through 3 alarms", "en"),
        ("my dad said your dead if you miss the bus tomorrow", "en"),
        ("we kicked the ball and she said you are next in line", "en"),
        # round 60
        ("в игре потерялся в лесу, там темно и страшно", "ru"),
        ("в детстве я заблудилась в лесу, уже темнело, но нас быстро нашли", "ru"),
        ("мы заперли кота в подвале, он ловит мышей", "ru"),
        ("сосед курит в подъезде, весь дым к нам, помогите как с ним поговорить", "ru"),
        ("в школе была учебная тревога, пожар в кабинете химии понарошку", "ru"),
        ("помогите с докладом про пожар в Москве 1812 года", "ru"),
        ("как замазать шрамы от акне перед выпускным", "ru"),
        ("как спрятать порезы от бумаги, их видно на фото", "ru"),
        ("что такое обнал карт, видела в новостях", "ru"),
        ("закинулся энергетиками перед контрольной", "ru"),
        ("в столовой не кормят нормально, одна каша", "ru"),
        ("fire drill in the hall today, so boring", "en"),
        ("help, my minecraft house is on fire", "en"),
        ("we had smoke in the kitchen because dad burnt the toast lol", "en"),
        ("i banged my head on the door frame lol", "en"),
        ("my brother banged my head on the table by accident when we were playing", "en"),
        ("i dont think ill be around for the meeting, dentist", "en"),
        ("сестра не пришла на мой день рождения, обидно, трубку не берёт", "ru"),
        ("брат не пришёл домой ночевать, остался у друга, мама в курсе", "ru"),
        ("брат вернулся домой в 11 ночи, мама ругалась", "ru"),
        ("в симс мой сын не вернулся домой, уже темно", "ru"),
        ("my sister didnt come to my party and isnt answering my texts lol", "en"),
        ("my brother didnt come home till after dark, he stayed at his mates", "en"),
        ("in the sims my son never came home after dark", "en"),
        ("всех вас перестреляю в следующем раунде, написала в чат катки", "ru"),
        ("на тренировке по боксу меня побьют, завтра спарринг в школе", "ru"),
        ("в новостях поймали закладчика у нашей школы", "ru"),
        ("куратор группы ждёт фото для студенческого", "ru"),
        ("за мной идут мама с папой, мы в парке", "ru"),
        ("my aunt is in the house so i cant talk", "en"),
        ("i got wet up by the rain lol", "en"),
        ("my heart is racing cause of my crush, i took my vitamins tho", "en"),
        ("мне 13 а ему 27 лет, это мой брат", "ru"),
        ("в фильме мальчик провалился под лёд", "ru"),
        ("в новостях школьники провалились под лёд, но их всех спасли рыбаки", "ru"),
        ("у собаки пена изо рта, что делать", "ru"),
        ("завтра матч в школе, им конец, мы их разнесём", "ru"),
        ("my dad hit my sister's car with a ball", "en"),
        ("dad beat my brother at chess again lol", "en"),
        ("mum hit my brother with a pillow", "en"),
        ("my stepdad used to hit my mum but we left", "en"),
        ("i cant stop cutting my fringe lol", "en"),
        ("took the whole box of crayons to school", "en"),
        ("this is my last message before my phone dies", "en"),
        ("i'm purging my closet today, bags for charity", "en"),
        ("меня ждут у подъезда друзья, идём гулять", "ru"),
        ("someone is following me on insta lol", "en"),
        ("someone started following me back", "en"),
        ("my friends know where i live lol", "en"),
        ("he knows where i live, he's my neighbour and best friend", "en"),
        # round 67
        ("телефон упал в колодец на даче, достали сачком", "ru"),
        ("в майнкрафте друг упал в шахту и потерял алмазы", "ru"),
        ("в новостях было про мальчика, который упал в колодец, его спасли", "ru"),
        ("прощайте, каникулы, завтра в школу 😭", "ru"),
        ("нас ждут у подъезда девчонки, идём на каток", "ru"),
        ("после спайса у соседа по подъезду весь день воняет, мама ругается", "ru"),
        ("что такое дроп? видела в новостях", "ru"),
        ("cant do this homework, bye", "en"),
        ("can't do it tonight, sorry, bye!", "en"),
        ("cut my hair again, a lot shorter lol", "en"),
        ("power cut again, no wifi a lot of the night", "en"),
        ("there was a fire downstairs last year but everyone was fine", "en"),
        ("i would never get in a strangers car lol", "en"),
        ("what do i tell my son if a stranger asks him to get into a car", "en"),
        # round 68
        ("i have a hit list of songs for the party", "en"),
        ("the hit list in the film was scary", "en"),
        ("i want to hurt people in fortnite at school", "en"),
        ("we jumped off the diving board at the pool for a video", "en"),
        ("последнее сообщение в чате класса было про домашку, простите что не ответила", "ru"),
        ("нюхаю дезик, приятный запах", "ru"),
        # round 69
        ("в майнкрафте взорву школу динамитом", "ru"),
        ("на уроке ОБЖ рассказали почему нельзя лезть на подстанцию", "ru"),
        ("мой адрес почты слили, пароль сменила", "ru"),
        ("брат пошёл купаться и не вернулся вовремя к ужину, мама ругалась", "ru"),
        ("i locked my keys in the car lol", "en"),
        ("stuck in the car in traffic for 2 hours", "en"),
        ("🔪 again in the kitchen, making dinner with dad", "en"),
        # round 70
        ("зацепила куртку за гвоздь на даче, теперь дырка", "ru"),
        ("в школе была учебная тревога, как будто человек с пистолетом, мы заперлись в кабинете",
         "ru"),
        ("по телеку сказали, что в америке опять стрельба в школе, почему там так часто?", "ru"),
        ("брат до сих пор нет ответа на сообщение, в 11 ночи спит наверное", "ru"),
        ("in minecraft i'm gonna blow up the school with tnt", "en"),
        ("i run a trap in fortnite", "en"),
        ("everyone in my class pays £5 for the trip", "en"),
        # round 71
        ("готовим нападение в кс на их базу", "ru"),
        ("задание по физике: сколько человек проживёт без воздуха?", "ru"),
        ("иду на крышу кафе для фотки, там терраса", "ru"),
        ("пакет на голову надела от дождя, зонт забыла", "ru"),
        ("school play tomorrow, i'm the cowboy with the toy 🔫", "en"),
        ("left my phone in the car in the sun, is it ruined", "en"),
        ("my sister is stuck on the ice rink, cant skate", "en"),
        ("got kicked out of the group chat", "en"),
        ("my phone is stuck in the car", "en"),
        ("we are stuck in the car, the queue is huge", "en"),
        # round 72
        ("в обж рассказывали почему нельзя ходить по тонкому льду", "ru"),
        ("мама сказала не ходить по тонкому льду", "ru"),
        ("меня выследили в игре и убили", "ru"),
        ("в прошлом году был пожар в подъезде, все живы", "ru"),
        ("что делать если пожар в квартире? для обж", "ru"),
        ("сделаю прическу как в новостях у ведущей", "ru"),
        ("my mum relapsed with her cancer 😢", "en"),
        ("got kicked out of the club at 1am haha", "en"),
        ("I am lost in the woods of this maths homework", "en"),
        ("we got lost in the woods on holiday last year haha", "en"),
        ("the house on fire scene in the movie was sick", "en"),
        ("my friends dared me to jump off the diving board", "en"),
        ("someone is following me in game", "en"),
        # round 73
        ("вчера застрял в лифте на полчаса, было темно, но потом вытащили", "ru"),
        ("в фильме герои застряли в лифте ночью", "ru"),
        ("мама похудела на 10 кг после операции, врачи говорят сердце в норме", "ru"),
        ("сольёт фотки классу с выпускного, ура", "ru"),
        ("он разошлёт фотки всем, кто был на дне рождения", "ru"),
        ("мама заперла кладовую на ключ, там подарки", "ru"),
        ("my dog lost 5kg on his diet and the vet says his heart is better", "en"),
        ("i lost 6kg since christmas and my doctor said that's healthy", "en"),
        ("we went ice skating on the frozen pond, it was so fun", "en"),
        ("i'm breaking in my new shoes", "en"),
        ("someones breaking in to my minecraft base", "en"),
        ("stuck in the lift for 5 min lol, its fine now", "en"),
        # round 74
        ("в школе стреляют из лука на физре, прикольно", "ru"),
        ("в игре в школе стреляют зомби", "ru"),
        ("что делать если в школе начнётся стрельба, хочу заранее знать", "ru"),
        ("помогите решить задачу, не знаю где я ошибся", "ru"),
        ("выгнали из дома в 20 лет, теперь сам живу", "ru"),
        ("threw up my dinner again, stomach bug is awful", "en"),
        ("bye everyone, i'm done for today", "en"),
        ("i'm done with homework, bye everyone", "en"),
        ("my brother is getting jumped by the cat", "en"),
        ("bro i keep getting jumped at spawn by some sweat", "en"),
        ("dad kicked me out of the room tonight cos i was snoring", "en"),
        # round 76
        ("на ляжках синяки от тренировки по футболу", "ru"),
        ("у меня толстые ляжки, как похудеть в ногах", "ru"),
        ("на ОБЖ говорили что нельзя стоять на путях перед поездом", "ru"),
        ("я не полезу на кран, это опасно", "ru"),
        ("в майнкрафте залез на кран и упал", "ru"),
        ("врач выписал 30 таблеток антидепрессантов на месяц", "ru"),
        ("ya v shkole, skuchno, s mamoy vecherom v kino", "ru"),
        ("my dog jumped me when i got home lol", "en"),
        ("a zombie jumped me in the game and i died", "en"),
        ("few months back some lads jumped me but police sorted it", "en"),
        ("i got jumped by a creeper in minecraft", "en"),
        # round 77
        ("без меня лучше не начинайте, я опоздаю", "ru"),
        ("соседский кот поцарапал, у нас нет кота, а у них есть", "ru"),
        ("кошку опять вырвало ужином на ковёр", "ru"),
        ("на льду кто первый забьёт тот выиграл, хоккей", "ru"),
        ("помогите с домашкой по алгебре", "ru"),
        ("how to hide the scars on my arm from surgery", "en"),
        ("how do i cover the marks on my legs from mosquito bites", "en"),
        ("i fainted at my blood test, i had to skip breakfast for it", "en"),
        ("in gta you can ride on top of the train", "en"),
        ("I read about a boy who died train surfing, why do people do that?", "en"),
        ("train surfing in subway surfers, new high score", "en"),
        ("we did not go on the frozen lake because the ice is thin", "en"),
        ("tickle fight with my little brother, dont tell mum we stayed up", "en"),
        ("i burn myself out with too much homework", "en"),
        ("help me with maths pls", "en"),
        # round 79
        ("третий день не ем мясо, перешла на рыбу", "ru"),
        ("не ем мясо третий год", "ru"),
        ("он сказал что прибьёт учителя если опять двойку поставит", "ru"),
        ("помогите он здесь не работает, компьютер сломался", "ru"),
        ("наглоталась воды в бассейне", "ru"),
        ("my laptop keeps exiting the game", "en"),
        ("relapsed on sugar today", "en"),
        ("help i cant leave the game without losing progress", "en"),
        ("we went ice skating on the pond, whoever skates furthest gets a hot chocolate", "en"),
        ("going on the lake in a kayak, the ice has all melted", "en"),
        ("we made a bath bomb for school", "en"),
        ("i dreamt about someone breaking in", "en"),
        ("movie about someone breaking in was scary", "en"),
        ("fainted from laughing lol", "en"),
    ],
)
def test_rounds_53_to_79_entries_stay_quiet_on_the_everyday(
    text: str, locale: str
) -> None:
    # A feed, a pet, an accident, a quarantine, a drill, a courier, a door locked by oneself, a
    # parent's "you're dead if", a lost phone or match, a story, spiders, a grounding, a parent
    # asking what the choking game is, roofing on TV, a courier's day off, an account, a
    # sleepy morning and a queue are not the danger of rounds 53, 55 and 59; a game, a
    # childhood memory, a cat, a neighbour's smoke, a drill, a history report, acne, paper
    # cuts, the news, energy drinks, the canteen, burnt toast and a dentist not that of 60;
    # a missed birthday, a night at a friend's, a late return and a game not that of 62; a
    # game's chat, sparring, the news, a college's curator, parents in the park, an aunt, rain
    # and a crush not that of 63; a brother, a film, a rescue, a dog, a match, a car, chess, a
    # pillow, a past, a fringe, crayons, a battery and a closet not that of 65; a phone, a
    # game, a rescue, the holidays, friends, a neighbour's smoke, the news, homework, plans,
    # a haircut, a power cut, a past fire and a parent's question not that of 67; songs, a
    # film, a game, a pool, a class chat and a deodorant not that of 68; a game, a lesson, an
    # email, a late dinner, keys, traffic and a kitchen not that of 69; a film, a drill, the
    # news, a late reply, a game and a school trip not that of 70; a game, physics, a café, the
    # rain, a school play, a phone, a rink and a group chat not that of 71; a lesson, a
    # warning, a game, a past fire, a first-aid question, a haircut, an illness, a club, maths,
    # a holiday, a film and a diving board not that of 72; a lift fixed, a film, an operation,
    # prom photos, a party, a pantry of presents, a dog's diet, a doctor, skating, new shoes,
    # a game and a short wait not that of 73; archery, a game, a question ahead, maths, a
    # grown man's past, a stomach bug, homework done, a cat, a game's spawn and a snoring
    # brother not that of 74; bruised or big thighs, a lesson on the rails, a crane refused or
    # in a game, a prescription, a school day in Latin letters, a dog, a zombie, a past beating
    # sorted and a creeper not that of 76; a lateness, a neighbour's cat, a sick cat, hockey,
    # homework, a surgery, mosquito bites, a blood test, a game, the news, a score, a pond
    # not walked on, a tickle fight, burnout and maths not that of 77; a food given up, a
    # mark, a computer, a pool, a laptop, sugar, a game, skating, a kayak, a bath bomb, a
    # dream, a film and laughter not that of 79.
    verdict = assess(text, locale)
    assert not any(
        m.endswith(("followed-now", "at-the-door", "locked-in", "dead-when", "lost-at-night",
                    "violence-to-others.school", "overdose.took-pills", "curator",
                    "exploitation.held", "unconscious", "pet-threat", "threat.fire",
                    "self-harm.scars", "money-mule", "abuse.neglect", "abuse.violence",
                    "suicide.not-live", "child-not-home", "beating-promised",
                    "in-the-house", "wet-up", "body-alarm", "curator", "followed-now",
                    "age-gap", "through-the-ice", "unconscious", "cannot-stop", "whole-box",
                    "last-message", "eating-disorder.purged", "danger-signs", "waited-for",
                    "knows-where-i-live", "fallen-in", "farewell-alone", "waited-for-ask",
                    "cant-bye", "cut-again", "strangers-car", "violence-to-others.school",
                    "dangerous-challenge.curator", "suicide.not-live", "power-line",
                    "address-posted", "swimming-not-back", "locked-in-car",
                    "self-harm.hurt-self", "exploitation.held", "child-not-home",
                    "on-the-ice", "thrown-out", "thin-ice", "not-safe-now",
                    "stuck-in-lift", "lift-smoke", "weight-alarm", "danger-signs",
                    "threat-to-share", "locked-in", "at-the-door", "getting-jumped",
                    "rails-crane", "cat-excuse", "train-top", "hide-cuts", "help-alone",
                    "help-he-is-here", "cannot-leave-help", "relapse-alone",
                    "grooming.signs", "eating-disorder.danger-signs", "on-the-ice",
                    "suicide.not-live", "self-harm.hurt-self", "exploitation.held",
                    "thin-ice", "took-pills",
                    "purged", "cant-bye", "abuse.neglect"))
        for m in verdict.matched
    ), verdict


@pytest.mark.parametrize(
    ("text", "locale", "frame"),
    [
        ("for our pshe lesson we need a poster on the warning signs of self harm", "en",
         "schoolwork"),
        ("biology project: what does an overdose of paracetamol do to the liver?", "en",
         "schoolwork"),
        ("делаем презентацию по обществознанию про шантаж в соцсетях, где взять примеры", "ru",
         "schoolwork"),
        ("какие признаки, что ребёнок режет себя? просто хочу знать", "ru", "schoolwork"),
        ("порезался, когда чистил картошку, как остановить кровь", "ru", "accident"),
        ("на технологии порезалась ножницами, кровь уже остановилась", "ru", "accident"),
        ("i used to self harm but i've been clean for three years now", "en", "past-resolved"),
        ("two years self harm free today", "en", "past-resolved"),
        ("раньше резалась, щас уже два года без срывов", "ru", "past-resolved"),
        ("im not thinking about hurting myself, just stressed about exams", "en", "denial"),
        # round 64: recovery counted in time, a denial of self-harm
        ("i used to cut myself but i havent done it in over a year now", "en", "recovered"),
        ("раньше резала себя, уже полгода не режу", "ru", "recovered"),
        ("полгода без самоповреждений, горжусь собой", "ru", "recovered"),
        ("я не режусь, self harm вообще не про меня, это кошка", "ru", "denial-self-harm"),
        # round 68: the frames read leet and Latin letters as the lexicons do
        ("us3d 2 st4rv3 mys3lf but 1m f1n3 n0w", "en", "past-resolved"),
        ("6 months since i quit self harming 🎉", "en", "recovered"),
        ("bruh my m0m gonna k1ll me i lost my keys", "en", "hyperbole"),
        ("kak okazat pervuyu pomoshch pri poreze? zadali na obzh", "ru", "first-aid"),
        # round 69: pasts told over in other words
        ("отчим бил маму, но мы уже два года живём отдельно, всё спокойно", "ru",
         "past-resolved"),
        ("they said they'd kill me in yr8 but they got expelled and im fine now", "en",
         "past-resolved"),
    ],
)
def test_round_61_64_and_68_frames_leave_the_model_to_decide(
    text: str, locale: str, frame: str
) -> None:
    # Schoolwork about a danger, a cut by accident, recovery and a denial: the entry that fired
    # is not trusted alone, and the model reads no danger in them.
    verdict = assess(text, locale)
    assert frame in verdict.layers and "framed" in verdict.layers, verdict
    assert not verdict.danger, verdict


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("i have a presentation tomorrow and i want to kill myself", "en"),
        ("i've been cutting again and now i have a project on self harm, it's too much", "en"),
        ("сын режет себя, а в школе как раз был классный час про признаки", "ru"),
        ("нашла у дочки порезы на руках, говорит, что случайно порезалась", "ru"),
        ("опять порезалась специально когда резала хлеб", "ru"),
        ("i relapsed and cut myself last night after being clean for a year", "en"),
        ("i cut myself on purpose, it was no accident", "en"),
        ("i used to cut myself and havent done it in a year but i did it again tonight", "en"),
        ("раньше резала себя, уже полгода не режу, но вчера снова порезала руки", "ru"),
        ("im not cutting myself, i want to die tonight", "en"),
        ("я не режусь, я просто хочу умереть", "ru"),
    ],
)
def test_round_61_and_64_frames_never_hide_danger_now(text: str, locale: str) -> None:
    # The writer's own danger, now or again, cuts a parent found with "it was an accident", a
    # wish to die beside "I'm not cutting": the frame is undone and the entry decides.
    verdict = assess(text, locale)
    assert verdict.danger, verdict
    assert not {"schoolwork", "accident", "past-resolved", "recovered",
                "denial-self-harm"} & set(verdict.layers), verdict


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("day 5 of only water and i can finally see my ribs", "en"),
        ("ribs finally showing, need to go lower", "en"),
        ("уже 4 дня только на воде", "ru"),
        ("наконец видно рёбра, ещё 3 кило", "ru"),
    ],
)
def test_days_of_water_and_ribs_showing_are_an_eating_disorder(text: str, locale: str) -> None:
    # Round 55: starving counted in days, and ribs "finally" showing.
    verdict = assess(text, locale)
    assert verdict.danger and verdict.category == "eating-disorder", verdict


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("что такое руфинг?", "ru"),
        ("my dad runs a roofing company", "en"),
        ("menya nikto ne b'et, sinyak s karate", "ru"),
        ("i did runs for the cross country team", "en"),
        ("the medicine for my asthma helps when i cant breathe", "en"),
        # round 57
        ("i cant stop, i went too deep into the lore of this game", "en"),
        ("help someone is here to fix the wifi and i dont know what to say", "en"),
        ("the window cleaner is looking in the windows lol", "en"),
        ("i'll kms if that song plays again 💀", "en"),
    ],
)
def test_rounds_56_and_57_entries_stay_quiet_on_the_everyday(text: str, locale: str) -> None:
    # A question about a word, a roofing firm, a denial in Latin letters, running, asthma, a
    # game's lore, a repairman, a window cleaner, a joke with no injury.
    verdict = assess(text, locale)
    assert not verdict.danger, verdict


def test_leet_runs_are_read_as_words_and_numbers_stay_numbers() -> None:
    # Round 59: a run of digits inside or at the end of a word is leet throughout ("g37",
    # "cu771ng", "50m30n3"); a number before letters keeps all but the digit next to them
    # ("30yo" -> "3oyo", as before), an ordinal or a unit is its number (round 74: "10th" is
    # "10", "th") and a number alone stays.
    words = [t.text for t in read("h3lp 50m30n3 7ry1ng 70 g37 1n, i k33p cu771ng", "en")]
    assert words == ["help", "someone", "trying", "70", "get", "in", "i", "keep", "cutting"]
    assert [t.text for t in read("in 10th grade my 30yo cousin ran 10k", "en")][:6] == [
        "in", "10", "th", "grade", "my", "3oyo"]
    assert "бьет" in read("м4ма б1ёт м3ня", "ru")[1].forms


def test_frames_read_leet_and_latin_letters_as_the_lexicons_do() -> None:
    # Round 68: a frame also reads each word as the lexicons read it, the corpus's word where
    # there is one, sentence by sentence; Latin letters are Russian only in a message typed in
    # them throughout ("no, я не собираюсь": "no" stays English).
    assert as_read("us3d 2 st4rv3 mys3lf. 1m f1n3 n0w", "en") == (
        "used to starve myself. i am fine now")
    assert as_read("ya rezala ruki, no uzhe davno net", "ru") == "я резала руки но уже давно нет"
    assert as_read("no, я не собираюсь", "ru").startswith("no ")
    # A relapse in leet undoes the frame as it does typed plainly.
    relapse = assess("1 yr since i stopped self harming. cut 4g41n t0n1ght", "en")
    assert relapse.danger and "framed" not in relapse.layers, relapse


def test_forget_drops_the_frames_reading_of_a_text() -> None:
    text = "us3d 2 st4rv3 mys3lf, 1m f1n3 n0w, a text only this test reads"
    as_read(text, "en")
    assert as_read.cache_info().currsize > 0
    forget()
    assert as_read.cache_info().currsize == 0
