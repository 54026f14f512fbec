"""Inverted index and scoring for the articles of one locale.

How a query is scored:
1. It is split into words. A word the index does not know is repaired against the vocabulary
   with a small edit distance (typos); phrases from data/synonyms.yaml add their alternatives
   (slang, abbreviations, word families that stemming cannot join).
2. Each resulting concept scores an article by its best alternative, BM25F-style over three
   fields. Titles and keywords weigh more than the body, and their matches are weighted by how
   rare the word is among titles and keywords. A keyword phrase found whole in the query
   ("save messages") adds a bonus.
3. The sum is multiplied by coverage: the share of the query's informative weight (idf) that
   the article matched. A question about pancakes that shares one word with an article stays low.
4. Articles under MIN_SCORE are dropped: an unanswerable question gets [] and the bot can offer
   a person instead of a wrong article.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Final

from rapidfuzz import process
from rapidfuzz.distance import OSA

from knowledge_base.markdown import blocks, clip
from knowledge_base.model import AUDIENCES, Article, Hit
from knowledge_base.synonyms import Phrase, Synonyms
from knowledge_base.text import Stemmer, stopwords, tokenize

MIN_SCORE: Final[float] = 1.6
"""Scores below this are not answers: `search` returns [] rather than a weak guess."""

SNIPPET_CHARS: Final[int] = 300

# BM25F: (field, weight, length normalisation b). The first two fields are the curated ones.
_FIELDS: Final[tuple[tuple[str, float, float], ...]] = (
    ("title", 2.5, 0.3),
    ("keywords", 4.0, 0.3),
    ("body", 0.3, 0.75),
)
_K1: Final[float] = 2.0
_SYNONYM_WEIGHT: Final[float] = 0.9
# A word repaired by fuzzy matching weighs less, the more so the larger the share of it changed.
_FUZZY_PENALTY: Final[float] = 1.5
# Informative weight of a word the index does not know at all, relative to the rarest word.
_UNKNOWN_FACTOR: Final[float] = 1.0
# Informative weight of a word for coverage: idf ** this (below 1 flattens rare-word dominance).
_INFO_POWER: Final[float] = 0.5
# Coverage exponent: the score is multiplied by (matched share of the query) ** this.
_COVERAGE_POWER: Final[float] = 1.5
# A keyword phrase whose words all occur in the query adds this much per word.
_PHRASE_BONUS: Final[float] = 1.0
_PHRASE_MAX_WORDS: Final[int] = 4
# Query stems tried for phrase matches: bounded so the number of combinations stays small.
_PHRASE_QUERY_STEMS: Final[int] = 12
_FUZZY_CACHE_LIMIT: Final[int] = 50_000
_CONCEPT_CACHE_LIMIT: Final[int] = 20_000
_BLOCK_CACHE_LIMIT: Final[int] = 2_000


def max_edits(token: str) -> int:
    """How many edits a typo repair may make: none for short words, two for long ones."""
    if len(token) < 4:
        return 0
    return 1 if len(token) < 10 else 2


def _fuzzy_weight(token: str, distance: int) -> float:
    return max(0.3, 1.0 - _FUZZY_PENALTY * distance / len(token))


@dataclass(frozen=True, slots=True)
class Concept:
    """One meaning in a query: alternative phrases (as stems) with their weights.

    When `own` is true the first alternative is the query's own wording (weight 1). `scale` is
    below 1 for a typo-repaired word; it is left out of equality so repaired and correctly
    spelt words share cached postings.
    """

    alternatives: tuple[tuple[Phrase, float], ...]
    own: bool = True
    scale: float = field(default=1.0, compare=False)
    lexicon: bool = False  # found in the synonym data: a word of our domain


@dataclass(frozen=True, slots=True)
class _Merged:
    """A concept's postings: article -> score, and the informative weight each article matched
    (`matched` per article, or the same `matched_all` for every article in `scores`)."""

    scores: dict[int, float]
    matched: dict[int, float] | None
    matched_all: float
    weight: float

    def matched_for(self, doc: int) -> float:
        """The informative weight an article in `scores` matched."""
        return self.matched_all if self.matched is None else self.matched[doc]


@dataclass(frozen=True, slots=True)
class _Block:
    """A paragraph or list of an article, for snippets: plain lines and their stems."""

    lines: tuple[str, ...]
    line_stems: tuple[frozenset[str], ...]
    stems: frozenset[str]


_EMPTY = _Merged({}, None, 0.0, 0.0)


class LocaleIndex:
    """Inverted index over the articles of one locale, built once; searching is read-only
    apart from bounded caches."""

    def __init__(self, articles: Sequence[Article], stemmer: Stemmer, synonyms: Synonyms) -> None:
        self.articles: list[Article] = sorted(articles, key=lambda a: a.id)
        self._stemmer = stemmer
        self._synonyms = synonyms
        self._stop = stopwords()
        self._build_postings()
        self._build_phrases()
        # Snippet data is built on demand for the few articles that become hits: stems of every
        # line of 10,000 articles would be hundreds of thousands of objects for the GC to walk.
        self._blocks: dict[int, tuple[_Block, ...]] = {}
        self._allowed = {
            audience: [a.for_audience(audience) for a in self.articles] for audience in AUDIENCES
        }
        self._fuzzy_cache: dict[str, tuple[str, int] | None] = {}
        self._concept_cache: dict[Concept, _Merged] = {}

    # --- building -----------------------------------------------------------------------------

    def _content_stems(self, text: str) -> list[str]:
        return self._stemmer.stems(t for t in tokenize(text) if t not in self._stop)

    def _build_postings(self) -> None:
        n = len(self.articles)
        field_tfs: list[list[Counter[str]]] = []
        field_lens: list[list[int]] = [[] for _ in _FIELDS]
        surface: Counter[str] = Counter()
        df: Counter[str] = Counter()
        df_curated: Counter[str] = Counter()
        df_body: Counter[str] = Counter()
        for article in self.articles:
            tfs: list[Counter[str]] = []
            for f, text in enumerate((article.title, "\n".join(article.keywords), article.body)):
                words = [t for t in tokenize(text) if t not in self._stop]
                surface.update(set(words))
                tf = Counter(self._stemmer.stems(words))
                tfs.append(tf)
                field_lens[f].append(sum(tf.values()))
            field_tfs.append(tfs)
            df.update(set().union(*tfs))
            df_curated.update(set(tfs[0]) | set(tfs[1]))
            df_body.update(set(tfs[2]))
        avg = [max(sum(lens) / n, 1.0) if n else 1.0 for lens in field_lens]

        def idf(count: int) -> float:
            return math.log(1.0 + (n - count + 0.5) / (count + 0.5))

        def saturate(tf: float) -> float:
            return tf * (_K1 + 1.0) / (_K1 + tf)

        # `info` (idf over all fields, flattened) says how informative a query word is, for
        # coverage. Title and keyword matches are scored with the word's rarity among titles and
        # keywords: in a corpus about online safety "save" is in almost every body, yet the
        # keyword "save messages" still marks the article about evidence.
        self.info: dict[str, float] = {
            stem: idf(count) ** _INFO_POWER for stem, count in df.items()
        }
        self._unknown_weight = _UNKNOWN_FACTOR * idf(0) ** _INFO_POWER
        self.postings: dict[str, dict[int, float]] = {}
        for doc, tfs in enumerate(field_tfs):
            for stem in set().union(*tfs):
                curated = body = 0.0
                for f, (_, weight, b) in enumerate(_FIELDS):
                    count = tfs[f].get(stem, 0)
                    if count:
                        value = weight * count / (1.0 - b + b * field_lens[f][doc] / avg[f])
                        if f < 2:
                            curated += value
                        else:
                            body += value
                impact = 0.0
                if curated:
                    impact += idf(df_curated[stem]) * saturate(curated)
                if body:
                    impact += idf(df_body[stem]) * saturate(body)
                self.postings.setdefault(stem, {})[doc] = impact

        # Typo repair candidates: indexed words (frequent first, so ties prefer them), slang
        # keys, and stop words (so a misspelt "меня" is recognised as a stop word, not a topic).
        vocab = [w for w, _ in surface.most_common() if len(w) > 2]
        extra = {t for t in self._stop | self._synonyms.words if len(t) > 2}
        self._vocab: list[str] = vocab + sorted(extra - set(vocab))

    def _build_phrases(self) -> None:
        # Title and keyword phrases of 2-4 content words, as sorted stem tuples -> articles.
        self._phrases: dict[tuple[str, ...], list[int]] = {}
        for doc, article in enumerate(self.articles):
            for keyword in (article.title, *article.keywords):
                key = tuple(sorted(set(self._content_stems(keyword))))
                if 2 <= len(key) <= _PHRASE_MAX_WORDS:
                    docs = self._phrases.setdefault(key, [])
                    if doc not in docs:
                        docs.append(doc)

    def _article_blocks(self, doc: int) -> tuple[_Block, ...]:
        """Paragraphs of an article with their stems, cached for recent hits."""
        cached = self._blocks.get(doc)
        if cached is not None:
            return cached
        result = []
        for lines in blocks(self.articles[doc].body):
            line_stems = tuple(frozenset(self._content_stems(line)) for line in lines)
            result.append(_Block(tuple(lines), line_stems, frozenset().union(*line_stems)))
        if len(self._blocks) >= _BLOCK_CACHE_LIMIT:
            self._blocks.clear()
        self._blocks[doc] = tuple(result)
        return self._blocks[doc]

    # --- query analysis -----------------------------------------------------------------------

    def _repair(self, token: str) -> tuple[str, int] | None:
        """The vocabulary word closest to an unknown token, with its edit distance."""
        if token in self._fuzzy_cache:
            return self._fuzzy_cache[token]
        limit = max_edits(token)
        found: tuple[str, int] | None = None
        if limit and not token.isdigit():
            best = process.extractOne(token, self._vocab, scorer=OSA.distance, score_cutoff=limit)
            if best is not None:
                found = (best[0], int(best[1]))
        if len(self._fuzzy_cache) >= _FUZZY_CACHE_LIMIT:
            self._fuzzy_cache.clear()
        self._fuzzy_cache[token] = found
        return found

    def concepts(self, query: str) -> list[Concept]:
        """Turn a query into concepts: repaired words, and phrases with their synonyms."""
        stem = self._stemmer.stem
        words: list[tuple[str, float]] = []
        for token in tokenize(query):
            scale = 1.0
            if token not in self._stop:
                st = stem(token)
                if st not in self.info and st not in self._synonyms.key_stems:
                    repaired = self._repair(token)
                    if repaired is not None and repaired[1] > 0:
                        token, scale = repaired[0], _fuzzy_weight(token, repaired[1])
            words.append((token, scale))

        stems = [stem(token) for token, _ in words]
        concepts: list[Concept] = []
        seen: set[Concept] = set()
        i = 0
        while i < len(words):
            match = self._synonyms.match(stems, i)
            if match is not None:
                length, alts = match
                span = range(i, i + length)
                own = tuple(stems[j] for j in span if words[j][0] not in self._stop)
                options = ([(own, 1.0)] if own else []) + [
                    (alt, _SYNONYM_WEIGHT) for alt in alts if alt != own
                ]
                scale = min(words[j][1] for j in span)
                concept = Concept(tuple(options), own=bool(own), scale=scale, lexicon=True)
                i += length
            else:
                token, scale = words[i]
                i += 1
                if token in self._stop:
                    continue
                concept = Concept((((stems[i - 1],), 1.0),), scale=scale)
            if concept.alternatives and concept not in seen:
                seen.add(concept)
                concepts.append(concept)
        return concepts

    def _phrase_info(self, phrase: Phrase) -> float:
        return sum(self.info.get(s, 0.0) for s in phrase) / len(phrase)

    def _weight(self, concept: Concept) -> float:
        """Informative weight of a concept (before `scale`): that of the query's own wording
        when the index knows it, else of the best-known synonym (slang articles never use)."""
        if concept.own:
            phrase, weight = concept.alternatives[0]
            own = self._phrase_info(phrase) * weight
            if own > 0.0:
                return own
        return max(self._phrase_info(phrase) * weight for phrase, weight in concept.alternatives)

    def _merged(self, concept: Concept) -> _Merged:
        """Postings of a concept: per article the best alternative's score."""
        alts = concept.alternatives
        if len(alts) == 1 and len(alts[0][0]) == 1 and alts[0][1] == 1.0:
            stem = alts[0][0][0]  # the common case: one word, no synonyms
            post = self.postings.get(stem)
            if post is None:
                return _EMPTY
            info = self.info[stem]
            return _Merged(post, None, info, info)
        cached = self._concept_cache.get(concept)
        if cached is not None:
            return cached

        weight = self._weight(concept)
        scores: dict[int, float] = {}
        matched: dict[int, float] = {}
        for phrase, alt_weight in alts:
            if len(phrase) == 1:
                post = self.postings.get(phrase[0])
                if not post:
                    continue
                # A synonym can be rarer than the query's own word; it must not count for more
                # of the query than that word does.
                hit = min(alt_weight * self.info[phrase[0]], weight)
                if not scores and alt_weight == 1.0:
                    scores = dict(post)
                    matched = dict.fromkeys(post, hit)
                    continue
                get_score, get_matched = scores.get, matched.get
                for doc, impact in post.items():
                    value = impact * alt_weight
                    if value > get_score(doc, 0.0):
                        scores[doc] = value
                    if hit > get_matched(doc, 0.0):
                        matched[doc] = hit
            else:
                share = alt_weight / len(phrase)
                sums: dict[int, list[float]] = {}
                for stem in phrase:
                    stem_info = self.info.get(stem, 0.0)
                    for doc, impact in self.postings.get(stem, {}).items():
                        acc = sums.setdefault(doc, [0.0, 0.0])
                        acc[0] += impact * share
                        acc[1] += stem_info * share
                for doc, (value, found) in sums.items():
                    if value > scores.get(doc, 0.0):
                        scores[doc] = value
                    hit = min(found, weight)
                    if hit > matched.get(doc, 0.0):
                        matched[doc] = hit
        result = _Merged(scores, matched, 0.0, weight)
        if len(self._concept_cache) >= _CONCEPT_CACHE_LIMIT:
            self._concept_cache.clear()
        self._concept_cache[concept] = result
        return result

    # --- search -------------------------------------------------------------------------------

    def search(self, query: str, audience: str | None, limit: int) -> list[Hit]:
        """Top articles for the query, best first, none under MIN_SCORE."""
        concepts = self.concepts(query)
        if not concepts or limit <= 0:
            return []
        total = 0.0
        parts: list[tuple[_Merged, float]] = []
        weights: list[float] = []
        for concept in concepts:
            merged = self._merged(concept)
            weight = merged.weight * concept.scale
            weights.append(weight)
            if weight <= 0.0:
                # A word no article uses counts against coverage (it is what an off-topic
                # question looks like), unless the synonym data knows it: an app name or slang
                # of our domain that the articles happen not to mention.
                if not concept.lexicon:
                    total += self._unknown_weight
                continue
            total += weight
            if merged.scores:
                parts.append((merged, concept.scale))
        if not parts or total <= 0.0:
            return []

        # Sum the concepts' scores, starting from a copy of the longest postings.
        parts.sort(key=lambda part: len(part[0].scores), reverse=True)
        first, first_scale = parts[0]
        if first_scale == 1.0:
            acc = dict(first.scores)
        else:
            acc = {doc: v * first_scale for doc, v in first.scores.items()}
        for merged, scale in parts[1:]:
            get = acc.get
            if scale == 1.0:
                for doc, v in merged.scores.items():
                    acc[doc] = get(doc, 0.0) + v
            else:
                for doc, v in merged.scores.items():
                    acc[doc] = get(doc, 0.0) + v * scale
        for doc, bonus in self._phrase_bonus(concepts).items():
            if doc in acc:
                acc[doc] += bonus

        best = self._top(acc, parts, total, audience, limit)
        return [
            Hit(self.articles[doc], round(final, 4), self._snippet(doc, concepts, weights))
            for final, doc in best
        ]

    def _top(
        self,
        acc: dict[int, float],
        parts: Sequence[tuple[_Merged, float]],
        total: float,
        audience: str | None,
        limit: int,
    ) -> list[tuple[float, int]]:
        """The best `limit` articles by final score (raw score times coverage).

        Coverage never exceeds the share of the query the index knows at all, so raw scores
        give an upper bound: articles are examined in falling raw-score order, a growing chunk
        at a time, until no unexamined article can beat the ones found or reach MIN_SCORE.
        """
        known = sum(merged.weight * scale for merged, scale in parts)
        ceiling = min(known / total, 1.0) ** _COVERAGE_POWER
        cut = MIN_SCORE / ceiling
        allowed = self._allowed[audience] if audience is not None else None
        chunk = max(32, limit * 8)
        while True:
            # Selecting from the dict directly is cheaper than building a filtered list first.
            candidates = heapq.nlargest(chunk, acc.items(), key=itemgetter(1))
            found: list[tuple[float, int]] = []
            for doc, raw in candidates:
                if raw < cut:
                    break
                if allowed is not None and not allowed[doc]:
                    continue
                matched = 0.0
                for merged, scale in parts:
                    if doc in merged.scores:
                        matched += scale * merged.matched_for(doc)
                final = raw * min(matched / total, 1.0) ** _COVERAGE_POWER
                if final >= MIN_SCORE:
                    found.append((final, doc))
            found.sort(key=lambda item: (-item[0], item[1]))
            best = found[:limit]
            if len(candidates) < chunk:
                return best
            bound = candidates[-1][1] * ceiling
            if bound < MIN_SCORE or (len(best) == limit and best[-1][0] >= bound):
                return best
            chunk *= 4

    def _phrase_bonus(self, concepts: Sequence[Concept]) -> dict[int, float]:
        """Per article, the bonus of its longest keyword phrase fully present in the query."""
        stems: list[str] = []
        for concept in concepts:  # the query's own words first, then synonyms
            if concept.own:
                stems.extend(s for s in concept.alternatives[0][0] if s not in stems)
        for concept in concepts:
            for phrase, _ in concept.alternatives[1 if concept.own else 0 :]:
                stems.extend(s for s in phrase if s not in stems)
        pool = sorted(stems[:_PHRASE_QUERY_STEMS])
        bonus: dict[int, float] = {}
        for size in range(2, min(_PHRASE_MAX_WORDS, len(pool)) + 1):
            for combo in itertools.combinations(pool, size):
                for doc in self._phrases.get(combo, ()):
                    bonus[doc] = max(bonus.get(doc, 0.0), _PHRASE_BONUS * size)
        return bonus

    def _snippet(self, doc: int, concepts: Sequence[Concept], weights: Sequence[float]) -> str:
        """The best-matching paragraph of an article, as plain text of at most 300 characters."""
        article_blocks = self._article_blocks(doc)
        if not article_blocks:
            return clip(self.articles[doc].title, SNIPPET_CHARS)

        def value(stems: frozenset[str]) -> float:
            total = 0.0
            for concept, weight in zip(concepts, weights, strict=True):
                total += weight * max(
                    w * sum(s in stems for s in phrase) / len(phrase)
                    for phrase, w in concept.alternatives
                )
            return total

        block_values = [value(block.stems) for block in article_blocks]
        block = article_blocks[block_values.index(max(block_values))]
        text = " ".join(block.lines)
        if len(text) <= SNIPPET_CHARS:
            return text
        # Too long: start at the best-matching line and take what fits.
        line_values = [value(stems) for stems in block.line_stems]
        start = line_values.index(max(line_values))
        picked: list[str] = []
        used = 0
        for line in block.lines[start:]:
            if picked and used + 1 + len(line) > SNIPPET_CHARS:
                break
            picked.append(line)
            used += len(line) + (1 if used else 0)
        return clip(" ".join(picked), SNIPPET_CHARS)
