"""The second triage layer: a linear model trained on the shipped, reviewed corpus.

The model file (``data/model.npz``) holds plain arrays only: the n-gram vocabularies, their
idf weights, the coefficients of two logistic regressions (danger / concern / safe, and which
signal), the calibration of the danger and reach scores, the thresholds, and the SHA-256 of
the corpus it was built from. It is loaded with ``allow_pickle=False``: nothing executable is
ever read from disk. ``helpline triage train`` rebuilds it (``dialogs.triage.train``), and a
test retrains and compares. A second file of the same kind, ``data/model_long.npz``, scores
messages of ``LONG_CHARS`` or more (round 81); its scores are mapped onto this model's bands.

Scoring re-implements the fitted vectorisers' ``transform`` (sublinear tf, idf, l2 norm) on
the vocabulary, so run time needs numpy only and costs a fraction of a millisecond.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .features import Doc, features

MODEL_PATH = Path(__file__).parent / "data" / "model.npz"
# The model for long messages (round 81): trained on the corpus and the held-out sets already
# read, whose many long everyday texts the corpus lacks. It scores a message of LONG_CHARS or
# more; the corpus's own model scores the shorter ones, where the read sets made short harmless
# phrases alarm (rounds 58b, 78 and 80).
LONG_MODEL_PATH = MODEL_PATH.with_name("model_long.npz")
LONG_CHARS = 150

# Character n-grams on word boundaries and word n-grams of stems: the vectoriser settings
# that training uses and run time reproduces.
CHAR_NGRAMS = (2, 5)
WORD_NGRAMS = (1, 2)
# How a conversation's last texts are joined to be read together (training and context).
CONTEXT_JOIN = " \n "

FloatArray = npt.NDArray[np.float64]


def char_ngrams(text: str) -> list[str]:
    """Character n-grams of each word padded with spaces (scikit-learn's ``char_wb``)."""
    lo, hi = CHAR_NGRAMS
    grams: list[str] = []
    for word in text.split():
        padded = f" {word} "
        size = len(padded)
        for n in range(lo, hi + 1):
            for i in range(size - n + 1):
                grams.append(padded[i : i + n])
            if size <= n:
                break
    return grams


def word_ngrams(text: str) -> list[str]:
    """Stem unigrams and bigrams (scikit-learn's ``word`` analyzer on ``\\S+`` tokens)."""
    tokens = text.split()
    lo, hi = WORD_NGRAMS
    grams: list[str] = []
    for n in range(lo, hi + 1):
        grams.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return grams


@dataclass(frozen=True, slots=True)
class Score:
    """What the model makes of one message."""

    danger: float  # calibrated probability that a counsellor is needed now
    reach: float  # calibrated probability of danger or concern (ask directly)
    signal: str  # the most likely danger signal
    signal_p: float
    top: tuple[str, ...]  # the n-grams that pushed most towards danger, for reviewers


_NO_COLUMNS: npt.NDArray[np.int64] = np.empty(0, dtype=np.int64)
# Words whose character n-grams' columns are kept (per process): a long message is read in
# many overlapping windows, and each window's words were looked up again (about half of the
# time a 3,000-character message took). The same columns, so the same vectors.
WORDS_KEPT = 4096


class _Vocab:
    """One vectoriser's vocabulary as a sorted array of its terms, looked up by binary search:
    a dict of 90,000 n-grams (with their strings as Python objects) cost about 15 MB in every
    process; the arrays cost a fifth of that and look up a message's few hundred n-grams at
    once."""

    def __init__(self, terms: Sequence[str] | npt.NDArray[np.str_], idf: FloatArray,
                 offset: int) -> None:
        array = np.asarray(terms, dtype=np.str_)
        order = np.argsort(array, kind="stable")
        self.sorted_terms: npt.NDArray[np.str_] = array[order]
        self.columns: npt.NDArray[np.int64] = order.astype(np.int64) + offset
        self._rank = np.empty(len(order), dtype=np.int32)  # column - offset -> sorted position
        self._rank[order] = np.arange(len(order), dtype=np.int32)
        self.offset = offset
        self.idf_array = np.asarray(idf, dtype=np.float64)

    def __len__(self) -> int:
        return len(self.sorted_terms)

    def term(self, column: int) -> str:
        """The n-gram of a column (for reviewers: the model's top signals)."""
        return str(self.sorted_terms[self._rank[column - self.offset]])

    def sparse(self, grams: Iterable[str]) -> tuple[npt.NDArray[np.int64], FloatArray]:
        """Sublinear tf times idf, l2-normalised: one vectoriser's ``transform``, as (column
        indices, values)."""
        return self.weigh(self.hits(grams))

    def hits(self, grams: Iterable[str]) -> npt.NDArray[np.int64]:
        """The columns of the n-grams that are in the vocabulary, once per occurrence."""
        query = np.asarray(list(grams), dtype=np.str_)
        if not len(query) or not len(self.sorted_terms):
            return _NO_COLUMNS
        pos = np.minimum(np.searchsorted(self.sorted_terms, query), len(self.sorted_terms) - 1)
        hit = self.sorted_terms[pos] == query
        return self.columns[pos[hit]] if hit.any() else _NO_COLUMNS

    def weigh(self, hits: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], FloatArray]:
        """`sparse` of the n-grams whose columns `hits` holds."""
        if not len(hits):
            return np.empty(0, dtype=np.int64), np.empty(0)
        idx, counts = np.unique(hits, return_counts=True)
        weights = (1.0 + np.log(counts)) * self.idf_array[idx - self.offset]
        norm = float(np.sqrt(weights @ weights))
        return idx, weights / norm

    def vector(self, grams: Iterable[str]) -> dict[int, float]:
        """The same as a dict (for tests that compare with scikit-learn)."""
        idx, val = self.sparse(grams)
        return {int(i): float(v) for i, v in zip(idx, val, strict=True)}


class TriageModel:
    """The trained model, loaded from plain arrays."""

    def __init__(self, path: Path = MODEL_PATH) -> None:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        self.meta: dict[str, Any] = json.loads(str(arrays["meta"]))
        self.chars = _Vocab(arrays["char_vocab"], arrays["char_idf"], 0)
        self.words = _Vocab(arrays["word_vocab"], arrays["word_idf"], len(self.chars))
        self.classes = [str(c) for c in arrays["classes"]]
        self.intercept: FloatArray = arrays["intercept"].astype(np.float64)
        self.signals = [str(c) for c in arrays["signal_classes"]]
        self.signal_intercept: FloatArray = arrays["signal_intercept"].astype(np.float64)
        danger_row = self.classes.index("danger")
        self._danger_row = danger_row
        self._concern_row = self.classes.index("concern")
        # Row-major by feature: one fancy-index gathers a message's columns for every class.
        # Only this layout is kept (the other would double the memory). The classes' weights
        # are widened to float64, as scikit-learn computes; the signal's (which only picks the
        # signal's name) stay as stored, float32: 5 MB less per process.
        self.coef_t: FloatArray = np.ascontiguousarray(arrays["coef"].T, dtype=np.float64)
        self.signal_coef_t: npt.NDArray[np.float32] = np.ascontiguousarray(
            arrays["signal_coef"].T, dtype=np.float32
        )
        # How much each n-gram pushes towards danger rather than the other classes.
        self.push: FloatArray = self.coef_t[:, danger_row] - self.coef_t.mean(axis=1)
        self.calibration: dict[str, list[float]] = self.meta["calibration"]
        self.thresholds: dict[str, float] = self.meta["thresholds"]
        # One word's character n-gram columns (`char_ngrams` reads each word on its own).
        self._word_hits = lru_cache(maxsize=WORDS_KEPT)(
            lambda word: self.chars.hits(char_ngrams(word)))
        self.long: TriageModel | None = None  # the model for long messages, if there is one

    def with_long(self, long: TriageModel) -> TriageModel:
        """This model for short messages, ``long`` for messages of ``LONG_CHARS`` or more."""
        self.long = long
        return self

    @property
    def coef(self) -> FloatArray:
        """The classes' weights as scikit-learn lays them out (a view, not a copy)."""
        return self.coef_t.T

    @property
    def corpus_sha256(self) -> str:
        return str(self.meta["corpus_sha256"])

    def vector(self, d: Doc) -> tuple[npt.NDArray[np.int64], FloatArray]:
        words = d.chars.split()
        word_hits = self._word_hits
        hits = [word_hits(word) for word in words]
        c_idx, c_val = self.chars.weigh(np.concatenate(hits) if hits else _NO_COLUMNS)
        w_idx, w_val = self.words.sparse(word_ngrams(d.stems))
        return np.concatenate((c_idx, w_idx)), np.concatenate((c_val, w_val))

    def probabilities(self, d: Doc) -> FloatArray:
        """Uncalibrated class probabilities, in ``self.classes`` order (as scikit-learn)."""
        return self._probabilities(*self.vector(d))

    def _probabilities(self, idx: npt.NDArray[np.int64], val: FloatArray) -> FloatArray:
        return _softmax(self.coef_t[idx].T @ val + self.intercept)

    def _calibrated(self, name: str, p: float) -> float:
        a, b = self.calibration[name]
        logit = math.log(max(p, 1e-9) / max(1.0 - p, 1e-9))
        return 1.0 / (1.0 + math.exp(-(a * logit + b)))

    def _score_vector(self, idx: npt.NDArray[np.int64], val: FloatArray) -> tuple[float, float]:
        probs = self._probabilities(idx, val)
        danger_p = float(probs[self._danger_row])
        danger = self._calibrated("danger", danger_p)
        reach = self._calibrated("reach", danger_p + float(probs[self._concern_row]))
        return danger, max(reach, danger)

    def score(self, text: str, locale: str) -> Score:
        """Score a message with this model, or a long one with the model for long messages, its
        scores mapped onto this model's bands (``_onto``)."""
        if self.long is not None and len(text) >= LONG_CHARS:
            return self._onto(self.long._score(text, locale), self.long.thresholds)
        return self._score(text, locale)

    def _onto(self, score: Score, theirs: dict[str, float]) -> Score:
        """Another model's score on this model's scale: piecewise linear through the thresholds
        (danger and cancelled danger for danger, check-in for reach), so that each band of
        theirs is the same band of ours and the layers above read one scale."""
        ours = self.thresholds
        danger = float(np.interp(
            score.danger, [0.0, theirs["danger"], theirs["cancelled_danger"], 1.0],
            [0.0, ours["danger"], ours["cancelled_danger"], 1.0]))
        reach = float(np.interp(score.reach, [0.0, theirs["check_in"], 1.0],
                                [0.0, ours["check_in"], 1.0]))
        return Score(danger=danger, reach=reach, signal=score.signal, signal_p=score.signal_p,
                     top=score.top)

    def _score(self, text: str, locale: str) -> Score:
        """Score a message: danger is the most alarming of the whole text and its windows
        (one clause about danger in a long message about something else); reach (danger or
        concern, for the check-in band) is the whole text's, or that danger if higher. A
        window's concern alone does not ask: the band's threshold is chosen on whole texts,
        and among a long message's many windows one reads as concern far more often than a
        whole text does (on the development sets' long safe texts, windows alone added a
        check-in to one in six)."""
        vectors = [self.vector(d) for d in features(text, locale)]
        scored = [(*self._score_vector(idx, val), n) for n, (idx, val) in enumerate(vectors)]
        danger, _reach, worst = max(scored, key=lambda s: (s[0], s[1]))
        reach = max(scored[0][1], danger)
        idx, val = vectors[worst]
        signal_p = _softmax(self.signal_coef_t[idx].T @ val.astype(np.float32)
                            + self.signal_intercept)
        best = int(np.argmax(signal_p))
        return Score(
            danger=danger,
            reach=reach,
            signal=self.signals[best],
            signal_p=float(signal_p[best]),
            top=self._top(idx, val),
        )

    def _term(self, column: int) -> str:
        vocab = self.chars if column < len(self.chars) else self.words
        return vocab.term(column)

    def _top(self, idx: npt.NDArray[np.int64], val: FloatArray, n: int = 5) -> tuple[str, ...]:
        if not len(idx):
            return ()
        push = self.push[idx] * val
        order = np.argsort(-push)[: 4 * n]
        top = [self._term(int(idx[i])).strip() for i in order if push[i] > 0]
        return tuple(t for t in dict.fromkeys(top) if len(t) > 2)[:n]


def _softmax(logits: FloatArray) -> FloatArray:
    shifted = np.exp(logits - logits.max())
    result: FloatArray = shifted / shifted.sum()
    return result


@cache
def load_model(path: Path = MODEL_PATH) -> TriageModel | None:
    """The shipped model, once per process; None when it has not been trained yet."""
    if not path.exists():
        return None
    model = TriageModel(path)
    long = path.with_name(LONG_MODEL_PATH.name)
    return model.with_long(TriageModel(long)) if long.exists() else model
