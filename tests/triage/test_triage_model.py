"""The trained layer: built from the shipped corpus (provably), loaded without unpickling,
and scoring the way scikit-learn does."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dialogs.triage import assess
from dialogs.triage.features import features, join_spelled
from dialogs.triage.model import LONG_CHARS, LONG_MODEL_PATH, MODEL_PATH, TriageModel, load_model
from dialogs.triage.train import CORPUS_DIR, READ_SETS, Line, corpus_sha256, read_corpus, train


def test_the_shipped_model_was_built_from_the_shipped_corpus() -> None:
    model = load_model()
    assert model is not None, "run `helpline triage train` and commit data/model.npz"
    assert model.corpus_sha256 == corpus_sha256(), (
        "the corpus changed since the model was trained: run `helpline triage train`"
    )
    assert model.long is not None, "run `helpline triage train` and commit data/model_long.npz"
    assert model.long.corpus_sha256 == corpus_sha256(read_sets=True), (
        "the corpus or the read sets changed since the models were trained: run "
        "`helpline triage train`"
    )


def test_the_model_files_hold_plain_arrays_only() -> None:
    for path in (MODEL_PATH, LONG_MODEL_PATH):
        with np.load(path, allow_pickle=False) as data:  # raises on any pickled object
            assert all(data[k].dtype != object for k in data.files)


def test_a_long_message_is_scored_by_the_long_model_in_the_same_bands() -> None:
    """Round 81: a message of LONG_CHARS or more is scored by the model for long messages, its
    scores mapped onto the short model's scale so that every band (danger, cancelled danger,
    check-in) is the one the long model's own thresholds give; a shorter one by the corpus's
    model alone."""
    model = load_model()
    assert model is not None and model.long is not None
    lines = read_corpus(read_sets=True)[::40]
    long_lines = [ln for ln in lines if len(ln.text) >= LONG_CHARS]
    assert len(long_lines) > 100
    ours, theirs = model.thresholds, model.long.thresholds
    bands = []
    for ln in long_lines:
        own, mapped = model.long._score(ln.text, ln.locale), model.score(ln.text, ln.locale)
        for name, key in (("danger", "danger"), ("danger", "cancelled_danger"),
                          ("reach", "check_in")):
            was = getattr(own, name) >= theirs[key]
            assert (getattr(mapped, name) >= ours[key]) == was, (ln.text, name, key)
            bands.append(was)
        assert (mapped.signal, mapped.top) == (own.signal, own.top)
    assert any(bands) and not all(bands)
    short = next(ln for ln in lines if len(ln.text) < LONG_CHARS)
    assert model.score(short.text, short.locale) == model._score(short.text, short.locale)


def test_the_corpus_is_big_covers_every_label_and_has_no_duplicates() -> None:
    lines = read_corpus()
    assert len(lines) >= 4000
    by_label = {label: sum(ln.label == label for ln in lines)
                for label in ("danger", "concern", "safe")}
    assert min(by_label.values()) >= 400, by_label
    assert {ln.locale for ln in lines} == {"ru", "en"}


# How far a retrain may move a score or a threshold: the solver's tolerance, across CPUs.
SOLVER_SLACK = 5e-3


def _terms(model: TriageModel) -> list[str]:
    """The model's n-grams, column by column."""
    return [model._term(col) for col in range(model.coef.shape[1])]


@pytest.mark.skipif(
    bool(os.environ.get("HELPLINE_TEST_DATABASE_URL")),
    reason="database-independent; the SQLite run retrains once",
)
def test_retraining_reproduces_the_shipped_model(tmp_path: Path) -> None:
    """Same corpus, same models: what matters (thresholds, every corpus line's verdict and
    scores, the coefficients) is compared for both models, so a corpus or a read set edited
    without retraining fails here too, and a failure after a library upgrade says which library
    changed."""
    out = tmp_path / "model.npz"
    meta = train(out=out)
    shipped = load_model()
    assert shipped is not None and shipped.long is not None
    again = TriageModel(out)
    _same_model(shipped, again, meta, read_corpus())
    long = TriageModel(tmp_path / LONG_MODEL_PATH.name)
    _same_model(shipped.long, long, meta["long"], read_corpus(read_sets=True))


def _same_model(shipped: TriageModel, again: TriageModel, meta: dict[str, Any],
                lines: list[Line]) -> None:
    assert meta["corpus_sha256"] == shipped.corpus_sha256
    recorded = shipped.meta.get("versions", {})
    changed = {k: f"{v} -> {meta['versions'].get(k)}" for k, v in recorded.items()
               if meta["versions"].get(k) != v}
    why = (f"libraries changed since the model was trained: {changed}; retrain with "
           "`helpline triage train` and commit the models" if changed else "same libraries")
    assert recorded, "the shipped model records no library versions: retrain it"
    # The solver stops within its tolerance of the optimum (train.TOLERANCE): on another CPU
    # (other rounding) a retrain lands a little elsewhere, never as far as a corpus edit moves it.
    slack = SOLVER_SLACK
    assert again.thresholds == pytest.approx(shipped.thresholds, abs=slack), why
    # The vectorisers keep the most frequent n-grams, and numpy's sort orders n-grams of equal
    # frequency at the cut-off differently on CPUs with and without AVX-512 (its SIMD paths):
    # between two such machines 1.6% of the terms at the edge differ. With the same terms the
    # weights must agree; with terms from another CPU, the thresholds (above) and the corpus
    # lines' verdicts (below) are what must.
    same_terms = _terms(shipped) == _terms(again)
    if same_terms:
        np.testing.assert_allclose(again.coef, shipped.coef, atol=0.02, err_msg=why)
    t, u = shipped.thresholds, again.thresholds
    differ = []
    for line in lines:
        a, b = shipped._score(line.text, line.locale), again._score(line.text, line.locale)
        close = abs(a.danger - b.danger) <= slack and abs(a.reach - b.reach) <= slack
        same_band = ((a.danger >= t["danger"]) == (b.danger >= u["danger"])
                     and (a.reach >= t["check_in"]) == (b.reach >= u["check_in"]))
        on_a_threshold = min(abs(a.danger - t["danger"]), abs(a.reach - t["check_in"])) <= slack
        # Another CPU's terms move every score a little: there the verdict band must hold.
        if (same_terms and not close) or not (same_band or on_a_threshold):
            differ.append(line.text)
    allowed = 0 if same_terms else len(lines) // 200  # another CPU's terms: 0.5% of lines
    assert len(differ) <= allowed, (
        f"{len(differ)} corpus lines scored differently ({why}; same terms: {same_terms}): "
        f"{differ[:5]}")


def test_run_time_scoring_matches_scikit_learn() -> None:
    from dialogs.triage.train import _matrix, _vectorizers, augment

    lines = read_corpus()[::10]
    docs = [features(ln.text, ln.locale)[0] for ln in augment(lines)]
    vecs = _vectorizers()
    x = _matrix(vecs, docs, fit=True).toarray()
    chars, words = vecs
    model = load_model()
    assert model is not None
    # Re-vectorise with our own transform on the same vocabulary and compare.
    from dialogs.triage.model import _Vocab, char_ngrams, word_ngrams

    cv = _Vocab(list(chars.get_feature_names_out()), chars.idf_, 0)
    wv = _Vocab(list(words.get_feature_names_out()), words.idf_, len(cv))
    for row, doc in zip(x[:50], docs[:50], strict=True):
        ours = np.zeros_like(row)
        merged = cv.vector(char_ngrams(doc.chars)) | wv.vector(word_ngrams(doc.stems))
        for i, v in merged.items():
            ours[i] = v
        np.testing.assert_allclose(ours, row, atol=1e-9)


def test_spelt_out_words_are_joined() -> None:
    assert join_spelled("хочу у м е р е т ь") == "хочу умереть"
    assert join_spelled("s.u.i.c.i.d.e") == "suicide"
    assert join_spelled("ре*жу руки") == "режу руки"
    assert join_spelled("я и ты") == "я и ты"
    # A leading "i" or "я" spelt out with its word stays a word of its own.
    assert join_spelled("i o v e r d o s e d") == "i overdosed"
    assert join_spelled("я г о л о д а ю") == "я голодаю"


def test_several_words_spelt_out_in_a_row_read_as_those_words() -> None:
    """A child who spaces out a whole sentence is read as the sentence, split by the words the
    corpus knows; a rare word spelt out stays whole rather than cut into scraps."""
    assert join_spelled("я у ш л а и з д о м а") == "я ушла из дома"
    assert join_spelled("i w a n t t o d i e") == "i want to die"
    assert join_spelled("п о м о г и т е о н б ь е т м е н я") == "помогите он бьет меня"
    assert join_spelled("с у и ц и д н у т ь с я") == "суициднуться"
    # Two or three letters split by dots or dashes are joined too; by spaces they are words.
    assert join_spelled("h-e-l-p m-e") == "help me"
    assert join_spelled("о.н б.ь.ё.т м.е.н.я") == "он бьёт меня"
    assert join_spelled("и в школе кто-то") == "и в школе кто-то"


def test_threshold_choice_simulates_the_verdict_assess_gives() -> None:
    """The thresholds are chosen on a simulation of the layers (train.verdicts): it must decide
    every line as Triage.assess does, or the rates it promises mean nothing."""
    from dialogs.triage.assess import _TRIAGE
    from dialogs.triage.train import lexicon_facts, verdicts

    model = load_model()
    assert model is not None
    lines = [ln for ln in read_corpus()[::25] if len(ln.text.split()) <= 20]
    scores = [model.score(ln.text, ln.locale) for ln in lines]
    danger = np.array([s.danger for s in scores])
    reach = np.array([s.reach for s in scores])
    is_danger, asked = verdicts(danger, reach, lexicon_facts(lines), model.thresholds)
    for i, ln in enumerate(lines):
        verdict = _TRIAGE.assess(ln.text, ln.locale)
        assert (verdict.danger, verdict.check_in) == (is_danger[i], asked[i]), ln.text


# Long everyday messages with one passing low moment. Among a long message's many windows one
# often reads as concern: that alone must not make the bot ask "are you safe?" (the check-in
# threshold is chosen on whole texts). Danger told in one clause of such a message still is.
LONG_EVERYDAY = [
    ("en", "So this weekend we went to my aunt's house in the countryside for my cousin's "
     "birthday and it was a lot of driving, like four hours each way. My cousin is turning "
     "eight so it was mostly little kids running around and a bouncy castle. I felt kind of "
     "lonely and left out honestly because everyone there was either tiny or my parents' age "
     "and nobody to talk to. But then my uncle let me drive the tractor around the field which "
     "was amazing, and we had barbecue and a huge chocolate cake. Anyway what are some good "
     "ways to make the drive less boring next time?"),
    ("ru", "В субботу мы всей семьёй ездили на дачу к бабушке, ехали почти три часа, в "
     "электричке было душно. Там мы копали картошку, потом папа жарил шашлыки, а я с собакой "
     "бегала у речки. Вечером мне стало как-то грустно и одиноко, потому что все сидели в "
     "телефонах и никто со мной не разговаривал. Зато потом бабушка научила меня печь пирог с "
     "яблоками, и он получился очень вкусный. Подскажите, какие есть настольные игры, чтобы "
     "играть всей семьёй на даче?"),
]


@pytest.mark.parametrize(("locale", "text"), LONG_EVERYDAY)
def test_a_windows_concern_alone_does_not_ask_in_a_long_everyday_message(
    locale: str, text: str
) -> None:
    model = load_model()
    assert model is not None
    docs = features(text, locale)
    assert len(docs) > 2, "a long message is read in windows too"
    ask = model.thresholds["check_in"]
    windows = [model._score_vector(*model.vector(d)) for d in docs[1:]]
    assert max(reach for _, reach in windows) >= ask, "a window reads as concern"
    score = model.score(text, locale)
    assert score.reach < ask and score.danger < model.thresholds["danger"]
    verdict = assess(text, locale)
    assert not verdict.danger and not verdict.check_in


@pytest.mark.parametrize(("locale", "text"), LONG_EVERYDAY)
def test_danger_told_in_one_clause_of_a_long_message_is_still_danger(
    locale: str, text: str
) -> None:
    clause = {"en": "I kept thinking about the pills I have been saving in my drawer and that "
                    "after the party I will take all of them tonight.",
              "ru": "Весь вечер думала про таблетки, которые коплю в ящике, сегодня ночью "
                    "выпью их все."}[locale]
    sentences = text.split(". ")
    told = ". ".join([*sentences[:2], clause.rstrip("."), *sentences[2:]])
    verdict = assess(told, locale)
    assert verdict.danger, told


def test_the_read_sets_in_training_are_the_read_held_out_sets_and_never_a_newer_one() -> None:
    """Round 81: the held-out sets already read train the model for long messages. The shipped
    files are what ``read_sets`` writes from them, and no set newer than ``NEWEST_READ`` (each
    read once, for the model of its day, never tuned on) gives a line: every held-out version
    on disk is either in training or newer."""
    from dialogs.triage import read_sets

    for locale in ("ru", "en"):
        shipped = CORPUS_DIR / READ_SETS / f"{locale}_read_sets.tsv"
        assert shipped.read_text(encoding="utf-8") == read_sets.render(locale), (
            "run `python -m dialogs.triage.read_sets`, then `helpline triage train`")
    trained = {ln.text for ln in read_corpus(read_sets=True) if not ln.budgeted}
    assert len(trained) > 20000
    names = set(read_sets.versions())
    newer = [p for p in (read_sets.ROOT / "tests" / "triage").glob("heldout_v*")
             if p.name not in names]
    assert newer and all(int(p.name.removeprefix("heldout_v")) > read_sets.NEWEST_READ
                         for p in newer)
