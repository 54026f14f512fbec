"""The triage verdict on one message: danger, signals, category and risk."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from dialogs.messages import COMMAND
from dialogs.taxonomy import Risk, Signal, is_category

from . import layout, segment
from .features import join_spelled
from .layout import as_typed
from .lexicon import DATA_DIR, Entry, LexiconError, compile_lexicons
from .matcher import Matcher
from .model import CONTEXT_JOIN, Score, TriageModel, load_model
from .normalize import Token, prefers_cyrillic, tokenize


@dataclass(frozen=True, slots=True)
class Assessment:
    """What triage makes of one message (with its conversation's recent messages).

    ``danger``: a person is needed now (emergency contacts, a case, a counsellor alerted).
    ``check_in``: not sure; the bot asks the child directly whether they are safe.
    ``matched`` holds the ids of the lexicon entries that fired, most serious first, and
    ``top`` the n-grams that pushed the model most: together they explain the verdict to a
    reviewer. ``layers`` names which of lexicon, model and context decided.
    """

    danger: bool
    signals: tuple[Signal, ...]
    category: str
    risk: Risk
    matched: tuple[str, ...]
    check_in: bool = False
    score: float = 0.0
    reach: float = 0.0
    top: tuple[str, ...] = ()
    about: str = "self"
    layers: tuple[str, ...] = ()

    def to_json(self, *, explain: bool = False) -> dict[str, object]:
        """A JSON-ready dict (for ``helpline triage --json`` and logs). ``explain`` adds the
        model's top n-grams: fragments of the text, for a reviewer's own input only, never
        for logs of children's messages."""
        data: dict[str, object] = {
            "danger": self.danger,
            "check_in": self.check_in,
            "risk": self.risk.value,
            "category": self.category,
            "score": round(self.score, 4),
            "reach": round(self.reach, 4),
            "signals": [s.value for s in self.signals],
            "matched": list(self.matched),
            "about": self.about,
            "layers": list(self.layers),
        }
        if explain:
            data["model_top"] = list(self.top)
        return data


@dataclass(frozen=True, slots=True)
class Frame:
    """How a message tells of danger (past and over, fiction, a question about a word): a
    lexicon entry in such a message is not trusted alone. ``then`` is "check_in" (ask when
    the model does not say danger), "model" (the model's own bands) or "answer" (danger when
    the model says so, else the question is answered: no check-in of the model's); a frame still
    asks when a lexicon entry of a signal in ``ask_for`` fired (a suicide attempt told as over:
    earlier suicidal thoughts are the strongest warning sign there is)."""

    id: str
    then: str
    all: tuple[re.Pattern[str], ...]
    sentence: bool = False  # must frame every sentence where a danger entry fired
    # Words that undo the frame wherever they stand ("again": a past that came back).
    none: tuple[re.Pattern[str], ...] = ()
    ask_for: frozenset[Signal] = frozenset()
    # The frame holds only when every danger signal that fired is one of these (empty: any):
    # a grooming request blocked and reported is handled, a wish to die told to mum is not.
    only_for: frozenset[Signal] = frozenset()
    # Also tried where only the model reads danger, which must then be as sure as over a
    # cancelled danger word (a pet at the vet: round 49).
    strict: bool = False

    def asks(self, signals: Sequence[Signal]) -> bool:
        """Whether the bot asks directly when the model does not read danger."""
        return self.then == "check_in" or bool(self.ask_for.intersection(signals))

    @property
    def uses_band(self) -> bool:
        """Whether the model's own check-in band asks in this frame ("answer" frames: a
        question asked ahead is answered, not met with "are you safe?")."""
        return self.then != "answer"

    def covers(self, signals: Sequence[Signal]) -> bool:
        """Whether the frame may hold for a message where these danger signals fired."""
        return not self.only_for or self.only_for.issuperset(signals)

    def applies(self, text: str) -> bool:
        return all(p.search(text) for p in self.all) and not any(
            p.search(text) for p in self.none)


_NEVER = 2.0  # a threshold no probability reaches
FRAME_THEN = ("check_in", "model", "answer")
_SENTENCES = re.compile(r"(?<=[.!?…\n])\s*")
_CYRILLIC = re.compile(r"[а-яё]", re.IGNORECASE)


def read(text: str, locale: str) -> tuple[Token, ...]:
    """The tokens the lexicons match: the normalised text, with words spelt out letter by
    letter ("у м е р е т ь", "s.u.i.c.i.d.e") joined first, as the model reads them; clock
    times and leet slang read as the lexicons read them (``tokenize``'s ``lexical``)."""
    return tokenize(join_spelled(text), locale, lexical=True)


@lru_cache(maxsize=1024)
def as_read(text: str, locale: str) -> str:
    """The text as the lexicons read it, for the frames (round 68): each word in the reading
    the corpus knows (in the locale's script first), else the reader's main one. "us3d 2
    st4rv3 mys3lf but 1m r3c0v3r3d n0w" is "used to starve myself but i am recovered now",
    "ran'she ya rezala ruki, no uzhe god" "... я резала руки но уже год"."""
    # Latin letters are read as Russian only in a message typed in Latin letters throughout:
    # in "no, я не собираюсь", "no" is English, not "но".
    cyrillic = prefers_cyrillic(locale) and not _CYRILLIC.search(text)
    # Sentence by sentence, so that a frame's "within the sentence" stays within it.
    return ". ".join(
        " ".join(_known_form(token, cyrillic) for token in read(sentence, locale))
        for sentence in _SENTENCES.split(text) if sentence.strip())


def _known_form(token: Token, cyrillic: bool) -> str:
    """A word as the frames read it: the commonest of its readings that the corpus knows, in
    the locale's script first; else the reading whose letter pairs are likeliest ("з46л0чил"
    is "заблочил", not "зчблочил")."""
    if len(token.forms) == 1:
        return token.text
    forms = sorted(token.forms)
    native = [f for f in forms if bool(_CYRILLIC.search(f)) == cyrillic] or forms
    known = [(cost, f) for f in native if (cost := segment.word_cost(f)) is not None]
    if known:
        return min(known)[1]
    return min(native, key=lambda f: (segment.spelling_cost(f), f))


def _frames(raw: Mapping[str, Any]) -> tuple[Frame, ...]:
    frames = []
    for name, spec in raw.items():
        patterns = spec.get("all") or ["|".join(f"(?:{p})" for p in spec["any"])]
        if spec.get("then") not in FRAME_THEN:
            raise LexiconError(f"frame {name}: then must be one of {', '.join(FRAME_THEN)}")
        compiled = tuple(re.compile(p) for p in patterns)
        sentence = spec.get("scope", "message") == "sentence"
        none = tuple(re.compile(p) for p in spec.get("none") or ())
        try:
            ask_for = frozenset(Signal(s) for s in spec.get("ask_for") or ())
            only_for = frozenset(Signal(s) for s in spec.get("only_for") or ())
        except ValueError as exc:
            raise LexiconError(f"frame {name}: {exc}") from exc
        strict = bool(spec.get("strict", False))
        frames.append(Frame(
            str(name), str(spec["then"]), compiled, sentence, none, ask_for, only_for, strict))
    return tuple(frames)


@dataclass(frozen=True, slots=True)
class _Policy:
    lexicons: tuple[Path, ...]
    signals: Mapping[Signal, tuple[str, Risk]]  # in priority order
    combined_risk: Risk
    category_priority: Mapping[str, int]
    default_category: str
    default_risk: Risk
    third_party: frozenset[str]
    frames: tuple[Frame, ...] = ()


def _load_policy(path: Path) -> _Policy:
    with path.open(encoding="utf-8") as fh:
        data: dict[str, Any] = yaml.safe_load(fh)
    signals = {
        Signal(name): (str(v["category"]), Risk(v["risk"])) for name, v in data["signals"].items()
    }
    missing = set(Signal) - set(signals)
    if missing:
        raise LexiconError(f"{path.name}: signals without policy: {sorted(missing)}")
    priority = [str(c) for c in data["category_priority"]]
    for category in [*priority, *(c for c, _ in signals.values())]:
        if not is_category(category):
            raise LexiconError(f"{path.name}: {category!r} is not a taxonomy category")
    words = data.get("third_party", {})
    return _Policy(
        lexicons=tuple(DATA_DIR / str(name) for name in data["lexicons"]),
        signals=signals,
        combined_risk=Risk(data["combined_risk"]),
        category_priority={c: i for i, c in enumerate(priority)},
        default_category=str(data["default"]["category"]),
        default_risk=Risk(data["default"]["risk"]),
        third_party=frozenset(str(w) for ws in words.values() for w in ws),
        frames=_frames(data.get("frames") or {}),
    )


# The share of the check-in threshold a message must reach on its own before the conversation
# around it can make it a check-in.
CONTEXT_OWN_SHARE = 0.5
# What the context layer joins of a long text: an earlier text's last characters (its own
# whole read came when it was sent), and this message's first and last (its whole read is
# the one alone, just before). Every corpus line, and so every conversation the model was
# trained on, is shorter: they are joined whole, as in training. A flood of long texts, each
# read with the two before it, no longer costs three texts' reading per turn.
CONTEXT_CHARS = 1000
# Texts read alone whose verdict and score are kept: the flood limit and the danger lane read
# a message at intake, its turn reads it again with the conversation (one read for both).
TEXTS_KEPT = 1024


class Triage:
    """Three layers, one verdict: compiled lexicons, the trained model, conversation context."""

    def __init__(
        self, policy_path: Path = DATA_DIR / "policy.yaml", model: TriageModel | None = None
    ) -> None:
        self.policy = _load_policy(policy_path)
        self.matcher = Matcher(compile_lexicons(self.policy.lexicons, self.policy.signals))
        self._signal_rank = {s: i for i, s in enumerate(self.policy.signals)}
        self._asking = frozenset(e.id for e in self.matcher.lexicon.entries if e.ask)
        self.model = model if model is not None else load_model()
        self._lexicon_alone = lru_cache(maxsize=TEXTS_KEPT)(self._lexicon_alone_now)
        self._score_alone = lru_cache(maxsize=TEXTS_KEPT)(self._score_alone_now)
        layout.warm()  # the keyboard-layout check's letter-pair tables, built once, now
        segment.warm()  # the corpus's words, for words spelt out in a row

    def _rank(self, entry: Entry) -> tuple[bool, int, int, int]:
        """Sort key: danger first, then risk, signal priority and category priority."""
        signal_rank = self._signal_rank[entry.signal] if entry.signal is not None else len(Signal)
        category_rank = self.policy.category_priority.get(entry.category, 99)
        return entry.signal is None, entry.risk.rank, signal_rank, category_rank

    def lexicon(self, tokens: tuple[Token, ...], *, command: bool = False) -> Assessment:
        """The first layer alone: reviewed lexicon entries. A danger entry whose every match
        an idiom or a negation cancelled is named in ``layers`` as "cancelled". In a bot
        ``command`` the entries that need the whole message do not fire."""
        fired, cancelled = self.matcher.fired_and_cancelled(tokens, whole=not command)
        fired = sorted(fired, key=self._rank)
        if not fired:
            said_no = any(e.signal is not None for e in cancelled)
            return Assessment(
                danger=False,
                signals=(),
                category=self.policy.default_category,
                risk=self.policy.default_risk,
                matched=(),
                layers=("cancelled",) if said_no else (),
            )
        signals = tuple(s for s in self.policy.signals if any(e.signal is s for e in fired))
        risk = min((e.risk for e in fired), key=lambda r: r.rank)
        if len(signals) > 1 and self.policy.combined_risk.rank < risk.rank:
            risk = self.policy.combined_risk
        return Assessment(
            danger=bool(signals),
            signals=signals,
            category=fired[0].category,
            risk=risk,
            matched=tuple(dict.fromkeys(e.id for e in fired)),
            layers=("lexicon",) if signals else (),
        )

    def _model_signal(self, score: Score) -> Signal:
        try:
            return Signal(score.signal)
        except ValueError:  # a model trained with a tag the code does not know
            return Signal.SUICIDE

    def _about(self, tokens: tuple[Token, ...]) -> str:
        return "other" if any(t.text in self.policy.third_party for t in tokens) else "self"

    def assess(self, text: str, locale: str, context: Sequence[str] = ()) -> Assessment:
        """Assess one message (see :func:`assess`)."""
        # Russian typed with the English layout is read as the Russian it is.
        text, context = as_typed(text), [as_typed(earlier) for earlier in context]
        verdict = self._lexicon_alone(text, locale)
        if self.model is None:
            return verdict
        score = self._score_alone(text, locale)
        thresholds = self.model.thresholds
        layers = list(verdict.layers)
        if "cancelled" in layers:
            # The lexicons saw a danger phrase and its negation or idiom ("i'm not going to
            # kill myself", "умираю со смеху"): the model, blind to both, asks when it reads
            # danger, and says danger only when it is as sure as it was on (almost) none of
            # the corpus lines whose danger words were cancelled and harmless.
            if score.danger >= thresholds.get("cancelled_danger", _NEVER):
                return self._danger(verdict, score, ("model", "cancelled"))
            return self._unsure(
                verdict,
                score,
                check_in=score.danger >= thresholds["danger"],
                layers=("cancelled",),
            )
        frame = self._frame(text, locale, verdict.signals, strict_only=not layers)
        if frame is not None:
            return self._framed(verdict, score, frame)
        # A lexicon hit is danger whatever the model says: the model can be confidently wrong
        # on short, plain danger ("меня хотят убить" reads like a game to it).
        if score.danger >= thresholds["danger"]:
            layers.append("model")
        if not layers:
            score, together = self._with_context(score, text, locale, context)
            if together:
                layers.append("context")
        if not layers:
            return self._undecided(verdict, score)
        return self._danger(verdict, score, tuple(layers))

    def forget(self) -> None:
        """Drop every text kept in memory (a user's /forget): the texts read alone and the
        words spelt out in a row; single words' readings stay (they are the vocabulary's)."""
        self._lexicon_alone.cache_clear()
        self._score_alone.cache_clear()
        as_read.cache_clear()
        segment.split_run.cache_clear()

    def _undecided(self, verdict: Assessment, score: Score) -> Assessment:
        """No layer says danger: the model's check-in band asks, or a lexicon entry that asks."""
        assert self.model is not None
        asks = self.asks(verdict)
        band = score.reach >= self.model.thresholds["check_in"]
        return self._unsure(
            verdict, score, check_in=asks or band, layers=("lexicon",) if asks else ())

    def asks(self, verdict: Assessment) -> bool:
        """Whether a lexicon entry that asks (``ask: true``: a concern a counsellor would ask
        about) fired: the bot then asks directly when no layer says danger."""
        return any(entry in self._asking for entry in verdict.matched)

    def _lexicon_alone_now(self, text: str, locale: str) -> Assessment:
        """The lexicon layer's verdict on one text as typed (kept: `_lexicon_alone`); a bot
        command's word is no call for help typed alone ("/help" is not "help"; round 77)."""
        tokens = read(text, locale)
        verdict = self.lexicon(tokens, command=COMMAND.match(text) is not None)
        return replace(verdict, about=self._about(tokens))

    def _score_alone_now(self, text: str, locale: str) -> Score:
        """The model's score of one text alone (kept: `_score_alone`)."""
        assert self.model is not None
        return self.model.score(text, locale)

    def _frame(
        self, text: str, locale: str, signals: Sequence[Signal], *, strict_only: bool = False
    ) -> Frame | None:
        """The first frame that holds for the text as typed or as the lexicons read it, with
        words spelt out joined ("р а н ь ш е  х о т е л а  у м е р е т ь, с е й ч а с  в с ё
        х о р о ш о" is told as past, as its letters together are). Where no lexicon entry
        fired (`strict_only`), only the strict frames are tried."""
        typed = text.casefold().replace("ё", "е")
        joined = join_spelled(text).casefold().replace("ё", "е")
        readings = tuple(dict.fromkeys((typed, joined, as_read(text, locale))))
        for frame in self.policy.frames:
            if not frame.covers(signals) or (strict_only and not frame.strict):
                continue
            # An undoing word in either reading undoes the frame ("r e l a p s e d").
            if any(p.search(r) for r in readings for p in frame.none):
                continue
            for lowered in readings:
                if not frame.applies(lowered):
                    continue
                if not frame.sentence or all(
                    frame.applies(sentence)
                    for sentence in _SENTENCES.split(lowered)
                    if self.lexicon(read(sentence, locale)).danger
                ):
                    return frame
        return None

    def _framed(self, verdict: Assessment, score: Score, frame: Frame) -> Assessment:
        """Danger words told as past and over, as fiction, the news or as a question: the model
        decides; when it does not say danger, a "check_in" frame still asks, an "answer" frame
        asks only for its ``ask_for`` signals."""
        assert self.model is not None
        thresholds = self.model.thresholds
        layers = ("framed", frame.id)
        if score.danger >= thresholds["cancelled_danger" if frame.strict else "danger"]:
            return self._danger(verdict, score, ("model", *layers))
        ask = frame.asks(verdict.signals) or (not verdict.danger and self.asks(verdict)) or (
            frame.uses_band and score.reach >= thresholds["check_in"])
        return self._unsure(verdict, score, check_in=ask, layers=layers)

    def _danger(self, verdict: Assessment, score: Score, layers: tuple[str, ...]) -> Assessment:
        """The verdict when any layer says danger: the lexicon's signal first, else the model's."""
        signals = verdict.signals or (self._model_signal(score),)
        category, risk = self.policy.signals[signals[0]]
        if verdict.danger:
            category, risk = verdict.category, verdict.risk
        return replace(
            verdict,
            danger=True,
            signals=signals,
            category=category,
            risk=risk,
            score=score.danger,
            reach=max(score.reach, score.danger),
            top=score.top,
            layers=layers,
        )

    def _with_context(
        self, score: Score, text: str, locale: str, context: Sequence[str]
    ) -> tuple[Score, bool]:
        """The third layer: the message read together with the conversation's last texts.
        Returns the stronger score and whether the texts together are danger."""
        assert self.model is not None
        recent = [t for t in context if t.strip()]
        if not recent:
            return score, False
        joined = CONTEXT_JOIN.join([*(_tail(t) for t in recent), *_ends(text)])
        together = self.model.score(joined, locale)
        # The model is trained on short conversations joined the same way (train.conversations),
        # so the joined texts meet the same threshold as one message.
        danger = together.danger >= self.model.thresholds["danger"]
        if danger or self._spans(recent, joined, locale):
            return together, True
        # A check-in asks about this message ("are you thinking of hurting yourself?"): the
        # joined texts may raise it only when this message carries some concern of its own,
        # not after "I spend too much time on my phone" following a bullying report.
        own = score.reach >= CONTEXT_OWN_SHARE * self.model.thresholds["check_in"]
        stronger = together if own and together.reach > score.reach else score
        return stronger, False

    def _spans(self, recent: Sequence[str], joined: str, locale: str) -> bool:
        """A lexicon entry matches across messages: it fires on the joined texts and on none
        of the earlier texts alone (one that fired alone was acted on, or was told as past or
        fiction, and is not counted twice)."""
        if not self.lexicon(read(joined, locale)).danger:
            return False
        return not any(self._lexicon_alone(t, locale).danger for t in recent)

    def _unsure(
        self, verdict: Assessment, score: Score, *, check_in: bool, layers: tuple[str, ...] = ()
    ) -> Assessment:
        """No danger: a check-in (risk medium) or nothing, with the model's figures."""
        return replace(
            verdict,
            danger=False,
            check_in=check_in,
            # A check-in is at least medium; a lexicon's higher risk (threats: high) stays.
            risk=Risk.MEDIUM
            if check_in and verdict.risk.rank > Risk.MEDIUM.rank
            else verdict.risk,
            score=score.danger,
            reach=score.reach,
            top=score.top,
            layers=layers,
        )


def _tail(text: str) -> str:
    """An earlier text as the context layer joins it: its last `CONTEXT_CHARS` characters,
    from a word's start."""
    if len(text) <= CONTEXT_CHARS:
        return text
    words = text[-CONTEXT_CHARS:].split(None, 1)
    return words[-1] if words else ""


def _ends(text: str) -> list[str]:
    """This message as the context layer joins it: whole, or its first and last
    `CONTEXT_CHARS` characters (the parts next to the earlier texts, and its last words)."""
    if len(text) <= 2 * CONTEXT_CHARS:
        return [text]
    head = text[: CONTEXT_CHARS + 1].rsplit(None, 1)
    return [head[0] if head else "", _tail(text)]


_TRIAGE = Triage()  # lexicons compiled and the model loaded once; a broken file fails here


def assess(text: str, locale: str = "ru", context: Sequence[str] = ()) -> Assessment:
    """Assess one message written by a child (or a parent) in ``locale`` ("ru", "en", ...).

    ``context`` is the same conversation's previous texts, oldest first (only those written
    within the policy's window): danger spread over several messages adds up. The whole
    message is read, however long. Both lexicons apply whatever the locale; the locale
    decides how ambiguous mixed-script words are read.
    """
    return _TRIAGE.assess(text, locale, context)


def forget() -> None:
    """Drop the texts `assess` keeps in this process's memory (`Triage.forget`)."""
    _TRIAGE.forget()
