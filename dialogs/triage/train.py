"""Build ``data/model.npz`` from the shipped corpus, and ``data/model_long.npz`` (the model for
long messages, round 81) from the corpus and the held-out sets already read: ``helpline triage
train``.

Reproducible: the corpus files are read in name order, augmentation uses a fixed seed, and
the solver is deterministic, so the same corpus gives the same model under the same library
versions (recorded in the model; a test retrains and compares). Thresholds and calibration
come from out-of-fold predictions on the training corpus only, for the verdict of all layers
together (``verdicts`` mirrors ``Triage.assess``); the held-out sets in ``tests/triage/`` are
never read here.

Augmentation teaches the model how children type without writing every variant by hand:
Russian lines are also written in Latin letters (two common schemes), some words are spelt
out with spaces or dots, and some lines are embedded in an unrelated safe line, so a danger
clause in the middle of a longer message keeps its label (and a harmless line next to
another harmless one stays harmless). Short conversations are made too, joined as the context
layer joins a child's last messages (see ``conversations``).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .features import Doc, features
from .model import CHAR_NGRAMS, CONTEXT_JOIN, LONG_MODEL_PATH, MODEL_PATH, WORD_NGRAMS

CORPUS_DIR = Path(__file__).parent / "data" / "corpus"
# The held-out sets already read (development sets since), as training lines of the model for
# long messages (round 81, corpus_pending/README.md): they train it but do not choose its
# thresholds, which keep their meaning on the reviewed corpus's hard negatives. Not read by the
# keyboard-layout tables or the word list for spelt-out words (those read the corpus
# directory's own files).
READ_SETS = "read_sets"
LABELS = ("danger", "concern", "safe")
SEED = 20261202
C_RISK = 8.0  # chosen on out-of-fold and development figures (4: about 1 point less recall)
C_SIGNAL = 4.0
# The solver's stopping tolerance. With many features the loss is nearly flat along some
# directions: at scikit-learn's default (1e-4) the coefficients where the solver stopped moved
# by up to 0.12 when only the order of the rows changed, and a retrain on another CPU (other
# rounding) scored 0.6% of the corpus lines into another band. At 1e-7 the solution is the
# optimum, whatever the rounding, to about 1e-3.
TOLERANCE = 1e-7
MAX_CHAR_FEATURES = 60000
MAX_WORD_FEATURES = 30000
# Out-of-fold rates on the training corpus that choose the thresholds, for the verdict of
# all layers together (lexicons, frames, model), as ``Triage.assess`` gives it. The corpus's
# safe lines are hard negatives (danger words in harmless sentences): everyday safe texts
# raise fewer alarms than this; check-ins come out about as often (see data/README.md).
# Round 41 (corpus_pending/README.md): 4.75%, so that the frames for hyperbole and the feed
# quiet what they cover and the model's threshold stays where round 27 had it (at 5% the
# freed budget went to the model, and short harmless phrases alarmed). Round 61b: 4.5%, so
# that what the frames for schoolwork, accidents, recovery and denial quiet on the corpus
# (26 safe lines) is not handed to the model, whose threshold stays where round 60 had it.
DANGER_ON_SAFE = 0.045  # danger on safe corpus lines
CHECKIN_ON_SAFE = 0.07  # check-ins (not danger) on safe corpus lines
CANCELLED_ON_SAFE = 0.01  # danger on safe lines whose danger words a negation cancelled

_TRANSLIT = (
    {  # "ya ne hochu zhit'": the common chat scheme
        "а": "a",
        "б": "b",
        "в": "v",
        "г": "g",
        "д": "d",
        "е": "e",
        "ё": "e",
        "ж": "zh",
        "з": "z",
        "и": "i",
        "й": "y",
        "к": "k",
        "л": "l",
        "м": "m",
        "н": "n",
        "о": "o",
        "п": "p",
        "р": "r",
        "с": "s",
        "т": "t",
        "у": "u",
        "ф": "f",
        "х": "h",
        "ц": "c",
        "ч": "ch",
        "ш": "sh",
        "щ": "sch",
        "ъ": "",
        "ы": "y",
        "ь": "",
        "э": "e",
        "ю": "yu",
        "я": "ya",
    },
    {  # "ja ne xochu zhit'": another one seen in chats
        "а": "a",
        "б": "b",
        "в": "v",
        "г": "g",
        "д": "d",
        "е": "e",
        "ё": "jo",
        "ж": "zh",
        "з": "z",
        "и": "i",
        "й": "j",
        "к": "k",
        "л": "l",
        "м": "m",
        "н": "n",
        "о": "o",
        "п": "p",
        "р": "r",
        "с": "s",
        "т": "t",
        "у": "u",
        "ф": "f",
        "х": "x",
        "ц": "ts",
        "ч": "ch",
        "ш": "sh",
        "щ": "shh",
        "ъ": "",
        "ы": "y",
        "ь": "'",
        "э": "e",
        "ю": "ju",
        "я": "ja",
    },
)


@dataclass(frozen=True, slots=True)
class Line:
    label: str
    tag: str
    text: str
    locale: str
    budgeted: bool = True  # a reviewed corpus line: its out-of-fold verdict sets thresholds


class CorpusError(ValueError):
    """A corpus line that is not ``label<TAB>tag<TAB>text``."""


# The libraries whose numerics or word analysis shape the model: a retrain under other
# versions may move coefficients in their last digits (the test says which changed).
_LIBRARIES = ("numpy", "scipy", "scikit-learn", "snowballstemmer")


def library_versions() -> dict[str, str]:
    """The installed versions of the libraries the model depends on."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in _LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "absent"
    return found


def corpus_files(corpus_dir: Path = CORPUS_DIR, read_sets: bool = False) -> list[Path]:
    """The reviewed corpus files, then (for the long model) the read held-out sets' (a line in
    both is the corpus's)."""
    own = sorted(corpus_dir.glob("*.tsv"))
    return own + sorted((corpus_dir / READ_SETS).glob("*.tsv")) if read_sets else own


def corpus_sha256(corpus_dir: Path = CORPUS_DIR, read_sets: bool = False) -> str:
    """One hash over the corpus files a model is built from, in name order: the reviewed
    corpus's (the model for short messages) or with the read sets (the one for long ones)."""
    digest = hashlib.sha256()
    for path in corpus_files(corpus_dir, read_sets):
        digest.update(path.name.encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def read_corpus(corpus_dir: Path = CORPUS_DIR, read_sets: bool = False) -> list[Line]:
    lines: list[Line] = []
    seen: set[str] = set()
    for path in corpus_files(corpus_dir, read_sets):
        locale = path.name.split("_", 1)[0]
        for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not raw.strip() or raw.startswith("#"):
                continue
            parts = raw.split("\t")
            if len(parts) != 3 or parts[0] not in LABELS or not parts[2].strip():
                raise CorpusError(f"{path.name}:{number}: expected label<TAB>tag<TAB>text")
            key = parts[2].strip().casefold()
            if key in seen:
                continue
            seen.add(key)
            budgeted = path.parent.name != READ_SETS
            lines.append(Line(parts[0], parts[1].strip(), parts[2].strip(), locale, budgeted))
    return lines


def _translit(text: str, scheme: dict[str, str]) -> str:
    out = []
    for ch in text:
        low = ch.lower()
        out.append(scheme.get(low, ch) if low in scheme else ch)
    return "".join(out)


def _spell_out(text: str, rng: random.Random) -> str:
    words = text.split()
    long = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    if not long:
        return text
    i = rng.choice(long)
    sep = rng.choice((" ", ".", " ", "*"))
    words[i] = sep.join(words[i])
    return " ".join(words)


def augment(lines: list[Line]) -> list[Line]:
    """The corpus plus its deterministic variants (see the module docstring)."""
    rng = random.Random(SEED)
    safe = [ln for ln in lines if ln.label == "safe"]
    out = list(lines)
    for line in lines:
        cyrillic = any("а" <= ch.lower() <= "я" for ch in line.text)
        if cyrillic and rng.random() < 0.4:
            scheme = _TRANSLIT[rng.randrange(len(_TRANSLIT))]
            out.append(Line(line.label, line.tag, _translit(line.text, scheme), line.locale))
        if rng.random() < 0.12:
            out.append(Line(line.label, line.tag, _spell_out(line.text, rng), line.locale))
        if rng.random() < 0.2:
            other = rng.choice(safe)
            parts = [other.text, line.text] if rng.random() < 0.5 else [line.text, other.text]
            out.append(Line(line.label, line.tag, " ".join(parts), line.locale))
    return out + conversations(lines, rng)


def _by_kind(
    lines: list[Line],
) -> tuple[dict[tuple[str, str], list[Line]], dict[str, list[Line]], dict[str, list[Line]]]:
    """Concern lines hinting at a signal (by locale and signal), distress and safe lines (by
    locale)."""
    hints: dict[tuple[str, str], list[Line]] = {}
    distress: dict[str, list[Line]] = {}
    chat: dict[str, list[Line]] = {}
    for ln in lines:
        if ln.label == "concern" and ln.tag != "distress":
            hints.setdefault((ln.locale, ln.tag), []).append(ln)
        elif ln.label == "concern":
            distress.setdefault(ln.locale, []).append(ln)
        elif ln.label == "safe":
            chat.setdefault(ln.locale, []).append(ln)
    return hints, distress, chat


def conversations(lines: list[Line], rng: random.Random) -> list[Line]:
    """Short conversations, joined as the context layer joins a child's last messages: three
    hints of the same signal add up to danger; three lines of distress, a hint among everyday
    chat and everyday chat alone do not."""
    hints, distress, chat = _by_kind(lines)

    def joined(label: str, tag: str, parts: list[Line]) -> Line:
        rng.shuffle(parts)
        return Line(label, tag, CONTEXT_JOIN.join(p.text for p in parts), parts[0].locale)

    out = []
    for (locale, tag), group in sorted(hints.items()):
        others = chat.get(locale, [])
        for line in group:
            if len(group) >= 3:
                rest = rng.sample([g for g in group if g is not line], 2)
                out.append(joined("danger", tag, [line, *rest]))
            if len(others) >= 2:
                out.append(joined("concern", tag, [line, *rng.sample(others, 2)]))
    for group in (distress[k] for k in sorted(distress)):
        out += [joined("concern", "distress", [ln, *rng.sample(group, 2)]) for ln in group[::2]]
    for group in (chat[k] for k in sorted(chat)):
        out += [joined("safe", ln.tag, [ln, *rng.sample(group, 2)]) for ln in group[::8]]
    return out


def _docs(lines: list[Line]) -> list[Doc]:
    return [features(ln.text, ln.locale)[0] for ln in lines]


def _vectorizers() -> tuple[Any, Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    chars = TfidfVectorizer(
        analyzer="char_wb",
        ngram_range=CHAR_NGRAMS,
        lowercase=False,
        sublinear_tf=True,
        min_df=2,
        max_features=MAX_CHAR_FEATURES,
        dtype=np.float64,
    )
    words = TfidfVectorizer(
        analyzer="word",
        token_pattern=r"\S+",
        ngram_range=WORD_NGRAMS,
        lowercase=False,
        sublinear_tf=True,
        min_df=2,
        max_features=MAX_WORD_FEATURES,
        dtype=np.float64,
    )
    return chars, words


def _matrix(vecs: tuple[Any, Any], docs: list[Doc], fit: bool) -> Any:
    from scipy.sparse import hstack

    chars, words = vecs
    c_in = [d.chars for d in docs]
    w_in = [d.stems for d in docs]
    if fit:
        return hstack([chars.fit_transform(c_in), words.fit_transform(w_in)]).tocsr()
    return hstack([chars.transform(c_in), words.transform(w_in)]).tocsr()


def _classifier(c: float) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=20000, class_weight="balanced", solver="lbfgs",
                              tol=TOLERANCE)


def _platt(p: npt.NDArray[np.float64], y: npt.NDArray[np.bool_]) -> list[float]:
    """Fit a, b so that sigmoid(a * logit(p) + b) is calibrated on (p, y)."""
    from sklearn.linear_model import LogisticRegression

    logit = np.log(np.clip(p, 1e-9, 1) / np.clip(1 - p, 1e-9, 1)).reshape(-1, 1)
    fit = LogisticRegression(C=1e6, max_iter=1000).fit(logit, y)
    return [float(fit.coef_[0][0]), float(fit.intercept_[0])]


def _apply(ab: list[float], p: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    logit = np.log(np.clip(p, 1e-9, 1) / np.clip(1 - p, 1e-9, 1))
    result: npt.NDArray[np.float64] = 1 / (1 + np.exp(-(ab[0] * logit + ab[1])))
    return result


def _out_of_fold(lines: list[Line], folds: int = 5) -> npt.NDArray[np.float64]:
    """Class probabilities of every original line from a model that never saw it (nor its
    augmented variants)."""
    from joblib import Parallel, delayed
    from sklearn.model_selection import StratifiedKFold

    y = np.array([ln.label for ln in lines])
    probs = np.zeros((len(lines), len(LABELS)))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=SEED)
    splits = list(splitter.split(np.zeros(len(y)), y))
    # The folds are independent: trained side by side, one per core.
    done = Parallel(n_jobs=min(folds, os.cpu_count() or 1))(
        delayed(_fold)([lines[i] for i in train_idx], [lines[i] for i in test_idx])
        for train_idx, test_idx in splits
    )
    for (_, test_idx), fold_probs in zip(splits, done, strict=True):
        probs[test_idx] = fold_probs
    return probs


def _fold(train_lines: list[Line], test_lines: list[Line]) -> npt.NDArray[np.float64]:
    """One fold: a model trained on `train_lines` (augmented), its probabilities on
    `test_lines` in `LABELS` order."""
    train = augment(train_lines)
    vecs = _vectorizers()
    x_train = _matrix(vecs, _docs(train), fit=True)
    clf = _classifier(C_RISK).fit(x_train, [ln.label for ln in train])
    x_test = _matrix(vecs, _docs(test_lines), fit=False)
    order = [list(clf.classes_).index(label) for label in LABELS]
    result: npt.NDArray[np.float64] = clf.predict_proba(x_test)[:, order]
    return result


@dataclass(frozen=True, slots=True)
class LexiconFacts:
    """What the lexicon layer makes of each corpus line (the lexicons are not trained, so
    these are out-of-sample facts)."""

    hit: npt.NDArray[np.bool_]  # a danger entry fired
    cancelled: npt.NDArray[np.bool_]  # every danger match was negated or an idiom
    framed: npt.NDArray[np.bool_]  # a hit told as past, fiction or a question
    frame_asks: npt.NDArray[np.bool_]  # ... by a frame that asks whatever the model says
    frame_answers: npt.NDArray[np.bool_]  # ... by a frame without the model's check-in band
    entry_asks: npt.NDArray[np.bool_]  # an entry that asks (``ask: true``), no danger entry
    # framed by a strict frame: the model must reach ``cancelled_danger`` (round 49); tried
    # also where no danger entry fired
    strict: npt.NDArray[np.bool_]


def lexicon_facts(lines: list[Line]) -> LexiconFacts:
    from .assess import Triage

    lexicon = Triage(model=None)
    facts: list[list[bool]] = [[] for _ in fields(LexiconFacts)]
    hit, cancelled, framed, asks, answers, entry_asks, strict = facts
    for ln in lines:
        verdict = lexicon._lexicon_alone_now(ln.text, ln.locale)  # as Triage.assess reads it
        entry_asks.append(not verdict.danger and lexicon.asks(verdict))
        # As Triage.assess: a cancelled line is decided before any frame; where no danger
        # entry fired, only the strict frames are tried.
        said_no = "cancelled" in verdict.layers
        frame = None if said_no else lexicon._frame(
            ln.text, ln.locale, verdict.signals, strict_only=not verdict.danger)
        hit.append(verdict.danger)
        cancelled.append(said_no)
        framed.append(frame is not None)
        asks.append(frame is not None and frame.asks(verdict.signals))
        answers.append(frame is not None and not frame.uses_band)
        strict.append(frame is not None and frame.strict)
    return LexiconFacts(*(np.array(a, dtype=bool) for a in facts))


def verdicts(
    danger: npt.NDArray[np.float64],
    reach: npt.NDArray[np.float64],
    lex: LexiconFacts,
    t: dict[str, float],
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Danger and check-in for every line, as ``Triage.assess`` decides them from the layers'
    facts and the model's scores (without conversation context)."""
    alone = lex.hit & ~lex.framed
    decided = alone | (lex.cancelled & (danger >= t["cancelled_danger"]))
    bar = np.where(lex.strict, t["cancelled_danger"], t["danger"])
    by_model = ~alone & ~lex.cancelled & (danger >= bar)
    is_danger = decided | by_model
    plain = ~lex.cancelled | (danger >= t["danger"])  # a cancelled line asks on danger only
    band = plain & ~lex.frame_answers & (reach >= t["check_in"])
    asks = (lex.framed & lex.frame_asks) | band | lex.entry_asks
    return is_danger, asks & ~is_danger


def _lowest(scores: npt.NDArray[np.float64], allowed: int) -> float:
    """The lowest threshold that at most ``allowed`` of ``scores`` reach."""
    ranked = np.sort(scores)[::-1]
    if allowed >= len(ranked):
        return 0.3
    return float(min(0.99, max(0.3, ranked[max(allowed, 0)] + 1e-6)))


def choose_thresholds(
    danger: npt.NDArray[np.float64],
    reach: npt.NDArray[np.float64],
    y: npt.NDArray[np.str_],
    lex: LexiconFacts,
) -> dict[str, float]:
    """Thresholds from out-of-fold scores: the rates above, for all layers together."""
    safe = y == "safe"
    cancelled = danger[lex.cancelled & safe]
    t = {
        "cancelled_danger": _lowest(cancelled, int(CANCELLED_ON_SAFE * len(cancelled))),
        "danger": 2.0,
        "check_in": 2.0,
    }
    # Danger: what the lexicons and cancelled lines already decide uses part of the budget,
    # the model's threshold gets the rest.
    fixed, _ = verdicts(danger, reach, lex, t)
    # A strictly framed line meets the cancelled lines' threshold, chosen above.
    free = safe & ~fixed & ~(lex.hit & ~lex.framed) & ~lex.cancelled & ~lex.strict
    budget = int(DANGER_ON_SAFE * safe.sum()) - int((fixed & safe).sum())
    t["danger"] = _lowest(danger[free], budget)
    t["cancelled_danger"] = max(t["cancelled_danger"], t["danger"])
    # Check-in: the same on what is not danger.
    is_danger, asked = verdicts(danger, reach, lex, t)
    free = safe & ~is_danger & ~asked
    budget = int(CHECKIN_ON_SAFE * safe.sum()) - int((asked & safe).sum())
    t["check_in"] = _lowest(reach[free], budget)
    return t


def _calibrate(lines: list[Line]) -> dict[str, Any]:
    """Calibration, thresholds and out-of-fold figures, from predictions on every corpus line
    by a model that never saw it."""
    y = np.array([ln.label for ln in lines])
    oof = _out_of_fold(lines)
    danger_cal = _platt(oof[:, 0], y == "danger")
    reach_cal = _platt(oof[:, 0] + oof[:, 1], y != "safe")
    danger_oof = _apply(danger_cal, oof[:, 0])
    reach_oof = np.maximum(_apply(reach_cal, oof[:, 0] + oof[:, 1]), danger_oof)
    # Thresholds and rates on the reviewed corpus's lines, scored by models that also learnt
    # from the read sets' lines.
    mine = np.array([ln.budgeted for ln in lines])
    lex = lexicon_facts([ln for ln in lines if ln.budgeted])
    y, danger_oof, reach_oof = y[mine], danger_oof[mine], reach_oof[mine]
    thresholds = choose_thresholds(danger_oof, reach_oof, y, lex)
    is_danger, asked = verdicts(danger_oof, reach_oof, lex, thresholds)
    locale = np.array([ln.locale for ln in lines if ln.budgeted])
    rates: dict[str, float] = {}
    for name, where in (("", locale != ""), ("ru_", locale == "ru"), ("en_", locale == "en")):
        hurt, safe = where & (y == "danger"), where & (y == "safe")
        rates |= {
            f"{name}recall": float(np.mean(is_danger[hurt])),
            f"{name}reach": float(np.mean((is_danger | asked)[hurt])),
            f"{name}concern_reach": float(np.mean((is_danger | asked)[where & (y == "concern")])),
            f"{name}false_alarms": float(np.mean(is_danger[safe])),
            f"{name}check_ins_on_safe": float(np.mean(asked[safe])),
        }
    rates["lexicon_recall"] = float(np.mean(lex.hit[y == "danger"]))
    rates["lexicon_false_alarms"] = float(np.mean(lex.hit[y == "safe"]))
    return {
        "calibration": {"danger": danger_cal, "reach": reach_cal},
        "thresholds": thresholds,
        "out_of_fold": rates,
    }


def train(
    corpus_dir: Path = CORPUS_DIR, out: Path = MODEL_PATH, out_long: Path | None = None
) -> dict[str, Any]:
    """Train, calibrate and write both models (round 81): the one for short messages on the
    reviewed corpus, the one for long messages (``out_long``, beside ``out`` by default) on the
    corpus and the read sets. Returns the first's metadata, the second's under ``"long"``."""
    meta = _fit(read_corpus(corpus_dir), corpus_sha256(corpus_dir), out)
    long = out_long if out_long is not None else out.with_name(LONG_MODEL_PATH.name)
    meta_long = _fit(read_corpus(corpus_dir, read_sets=True),
                     corpus_sha256(corpus_dir, read_sets=True), long)
    return {**meta, "long": meta_long}


def _fit(lines: list[Line], sha256: str, out: Path) -> dict[str, Any]:
    """Train, calibrate and write one model; returns its metadata (with out-of-fold rates)."""
    calibrated = _calibrate(lines)
    full = augment(lines)
    vecs = _vectorizers()
    x = _matrix(vecs, _docs(full), fit=True)
    clf = _classifier(C_RISK).fit(x, [ln.label for ln in full])
    hurt = [i for i, ln in enumerate(full) if ln.label == "danger"]
    sig = _classifier(C_SIGNAL).fit(x[hurt], [full[i].tag for i in hurt])
    meta = {
        "corpus_sha256": sha256,
        "lines": len(lines),
        "augmented": len(full),
        "seed": SEED,
        "versions": library_versions(),
        **calibrated,
    }
    _write(out, meta, vecs, clf, sig)
    return meta


def _write(out: Path, meta: dict[str, Any], vecs: tuple[Any, Any], clf: Any, sig: Any) -> None:
    """The model file: plain arrays and a JSON string, nothing pickled."""
    chars, words = vecs
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as fh:
        np.savez_compressed(
            fh,
            meta=np.array(json.dumps(meta, sort_keys=True)),
            char_vocab=np.array(chars.get_feature_names_out().astype(str)),
            char_idf=chars.idf_.astype(np.float32),
            word_vocab=np.array(words.get_feature_names_out().astype(str)),
            word_idf=words.idf_.astype(np.float32),
            classes=np.array([str(c) for c in clf.classes_]),
            coef=clf.coef_.astype(np.float32),
            intercept=clf.intercept_.astype(np.float32),
            signal_classes=np.array([str(c) for c in sig.classes_]),
            signal_coef=sig.coef_.astype(np.float32),
            signal_intercept=sig.intercept_.astype(np.float32),
        )
