"""The knowledge base: loading articles and searching them with a BM25F-style inverted index.

How a query is scored:
1. It is split into words; a word unknown to the index is repaired against the vocabulary with a
   small edit distance (typos), and phrases from data/synonyms.yaml add their alternatives
   (slang, abbreviations, word families stemming cannot join).
2. Each resulting concept scores an article by its best alternative, BM25F over three fields:
   title and keywords weigh more than the body.
3. The sum is multiplied by coverage: the share of the query's informative weight the article
   matched. A query about pancakes that shares one common word with an article stays low.
4. Articles under MIN_SCORE are dropped, so an unanswerable question gets [] and the bot can
   offer a person instead of a wrong article.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

from rapidfuzz import process
from rapidfuzz.distance import OSA

from knowledge_base.frontmatter import field_problems, parse_file, to_article
from knowledge_base.markdown import blocks, clip
from knowledge_base.model import (
    ARTICLES_DIR,
    AUDIENCES,
    Article,
    ArticleError,
    Hit,
    Problem,
    resolve_locale,
)
from knowledge_base.synonyms import Phrase, Synonyms
from knowledge_base.text import Stemmer, default_stemmer, stopwords, tokenize

MIN_SCORE: Final[float] = 2.2
"""Scores below this are not answers: `search` returns [] rather than a weak guess."""

SNIPPET_CHARS: Final[int] = 300

# BM25F: (weight, length normalisation b) per field. Titles and keywords are curated for search.
_FIELDS: Final[tuple[tuple[str, float, float], ...]] = (
    ("title", 2.5, 0.3),
    ("keywords", 4.0, 0.3),
    ("body", 0.5, 0.75),
)
_K1: Final[float] = 2.0
_SYNONYM_WEIGHT: Final[float] = 0.9
# A word repaired by fuzzy matching weighs less, the more so the larger the share of it changed.
_FUZZY_PENALTY: Final[float] = 1.5
# Informative weight of a word the index does not know at all, relative to the rarest word.
_UNKNOWN_FACTOR: Final[float] = 0.8
# Coverage exponent: 1 multiplies the score by the matched share of the query.
_COVERAGE_POWER: Final[float] = 1.0
_FUZZY_CACHE_LIMIT: Final[int] = 50_000
_CONCEPT_CACHE_LIMIT: Final[int] = 20_000


@dataclass(frozen=True, slots=True)
class _Concept:
    """One meaning in a query: alternative phrases (as stems) with their weights.

    When `own` is true the first alternative is the query's own wording.
    """

    alternatives: tuple[tuple[Phrase, float], ...]
    own: bool = True


@dataclass(frozen=True, slots=True)
class _Block:
    """A paragraph or list of an article, for snippets: plain lines and their stems."""

    lines: tuple[str, ...]
    line_stems: tuple[frozenset[str], ...]
    stems: frozenset[str]


# Per concept: article index -> (score contribution, matched informative weight).
_Postings = dict[int, tuple[float, float]]


def max_edits(token: str) -> int:
    """How many edits a typo repair may make: none for short words, more for long ones."""
    if len(token) < 4:
        return 0
    return 1 if len(token) < 10 else 2


def _fuzzy_weight(token: str, distance: int) -> float:
    return max(0.3, 1.0 - _FUZZY_PENALTY * distance / len(token))


class _LocaleIndex:
    """Inverted index over the articles of one locale."""

    def __init__(self, articles: Sequence[Article], stemmer: Stemmer, synonyms: Synonyms) -> None:
        self.articles: list[Article] = sorted(articles, key=lambda a: a.id)
        self._stemmer = stemmer
        self._synonyms = synonyms
        self._stop = stopwords()
        n = len(self.articles)

        field_tfs: list[list[Counter[str]]] = []
        field_lens: list[list[int]] = [[] for _ in _FIELDS]
        surface: Counter[str] = Counter()
        df: Counter[str] = Counter()
        df_curated: Counter[str] = Counter()
        df_body: Counter[str] = Counter()
        for article in self.articles:
            texts = (article.title, "\n".join(article.keywords), article.body)
            tfs: list[Counter[str]] = []
            for f, text in enumerate(texts):
                words = [t for t in tokenize(text) if t not in self._stop]
                surface.update(set(words))
                tf = Counter(stemmer.stems(words))
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

        # `idf` (over all fields) measures how informative a query word is, for coverage.
        # Title/keyword matches are scored with the rarity of the word among titles and keywords:
        # in a corpus about online safety "save" or "message" is in almost every body, yet a
        # keyword "save messages" still marks the one article about evidence.
        self.idf: dict[str, float] = {stem: idf(count) for stem, count in df.items()}
        self._unknown_weight = _UNKNOWN_FACTOR * idf(0)
        self.postings: dict[str, dict[int, float]] = {}
        for doc, tfs in enumerate(field_tfs):
            for stem in set().union(*tfs):
                weighted = [0.0, 0.0]  # curated (title + keywords), body
                for f, (_, weight, b) in enumerate(_FIELDS):
                    tf = tfs[f].get(stem, 0)
                    if tf:
                        norm = 1.0 - b + b * field_lens[f][doc] / avg[f]
                        weighted[f // 2] += weight * tf / norm
                impact = 0.0
                if weighted[0]:
                    impact += idf(df_curated[stem]) * saturate(weighted[0])
                if weighted[1]:
                    impact += idf(df_body[stem]) * saturate(weighted[1])
                self.postings.setdefault(stem, {})[doc] = impact

        self.blocks: list[tuple[_Block, ...]] = [self._blocks(a) for a in self.articles]
        # Typo repair candidates: indexed words (frequent first, so ties prefer them), slang keys,
        # and stop words (so a misspelt "меня" is recognised as a stop word, not a topic).
        vocab = [w for w, _ in surface.most_common() if len(w) > 2]
        extra = {t for t in self._stop | synonyms.words if len(t) > 2}
        self._vocab: list[str] = vocab + sorted(extra - set(vocab))
        self._fuzzy_cache: dict[str, tuple[str, int] | None] = {}
        self._concept_cache: dict[_Concept, _Postings] = {}

    def _blocks(self, article: Article) -> tuple[_Block, ...]:
        result = []
        for lines in blocks(article.body):
            line_stems = tuple(
                frozenset(self._stemmer.stems(t for t in tokenize(line) if t not in self._stop))
                for line in lines
            )
            result.append(_Block(tuple(lines), line_stems, frozenset().union(*line_stems)))
        return tuple(result)

    # --- query analysis -------------------------------------------------------------------

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

    def concepts(self, query: str) -> list[_Concept]:
        """Turn a query into concepts: repaired words, phrases with their synonyms."""
        stem = self._stemmer.stem
        words: list[tuple[str, float]] = []
        for token in tokenize(query):
            weight = 1.0
            if token not in self._stop:
                st = stem(token)
                if st not in self.idf and st not in self._synonyms.key_stems:
                    repaired = self._repair(token)
                    if repaired is not None and repaired[1] > 0:
                        token, weight = repaired[0], _fuzzy_weight(token, repaired[1])
            words.append((token, weight))

        stems = [stem(token) for token, _ in words]
        concepts: list[_Concept] = []
        seen: set[_Concept] = set()
        i = 0
        while i < len(words):
            match = self._synonyms.match(stems, i)
            if match is not None:
                length, alts = match
                span = range(i, i + length)
                weight = min(words[j][1] for j in span)
                own = tuple(stems[j] for j in span if words[j][0] not in self._stop)
                options = ([(own, weight)] if own else []) + [
                    (alt, weight * _SYNONYM_WEIGHT) for alt in alts if alt != own
                ]
                concept = _Concept(tuple(options), own=bool(own))
                i += length
            else:
                token, weight = words[i]
                i += 1
                if token in self._stop:
                    continue
                concept = _Concept((((stems[i - 1],), weight),))
            if concept.alternatives and concept not in seen:
                seen.add(concept)
                concepts.append(concept)
        return concepts

    def _phrase_idf(self, phrase: Phrase) -> float:
        return sum(self.idf.get(s, 0.0) for s in phrase) / len(phrase)

    def _weight(self, concept: _Concept) -> float:
        """Informative weight of a concept: the idf of the query's own wording when the index
        knows it, else of the best-known synonym (slang the articles never use)."""
        if concept.own:
            phrase, weight = concept.alternatives[0]
            own = self._phrase_idf(phrase) * weight
            if own > 0.0:
                return own
        return max(self._phrase_idf(phrase) * weight for phrase, weight in concept.alternatives)

    def _postings(self, concept: _Concept) -> _Postings:
        """Per article: best alternative's score and the informative weight it matched."""
        cached = self._concept_cache.get(concept)
        if cached is not None:
            return cached
        result: _Postings = {}
        # A synonym can be rarer than the query's own word; it must not count for more of the
        # query than that word does.
        cap = self._weight(concept)
        for phrase, weight in concept.alternatives:
            share = weight / len(phrase)
            sums: dict[int, list[float]] = {}
            for stem in phrase:
                idf = self.idf.get(stem, 0.0)
                for doc, impact in self.postings.get(stem, {}).items():
                    acc = sums.setdefault(doc, [0.0, 0.0])
                    acc[0] += impact * share
                    acc[1] += idf * share
            for doc, (score, found) in sums.items():
                matched = min(found, cap)
                old = result.get(doc)
                result[doc] = (score, matched) if old is None else (
                    max(score, old[0]),
                    max(matched, old[1]),
                )
        if len(self._concept_cache) >= _CONCEPT_CACHE_LIMIT:
            self._concept_cache.clear()
        self._concept_cache[concept] = result
        return result

    # --- search -----------------------------------------------------------------------------

    def search(self, query: str, audience: str | None, limit: int) -> list[Hit]:
        """Top articles for the query, best first, none under MIN_SCORE."""
        concepts = self.concepts(query)
        if not concepts or limit <= 0:
            return []
        total = 0.0
        scores: dict[int, float] = {}
        matched: dict[int, float] = {}
        weights: list[float] = []
        for concept in concepts:
            weight = self._weight(concept)
            weights.append(weight)
            if weight <= 0.0:
                total += self._unknown_weight
                continue
            total += weight
            for doc, (score, hit) in self._postings(concept).items():
                scores[doc] = scores.get(doc, 0.0) + score
                matched[doc] = matched.get(doc, 0.0) + hit
        if not scores or total <= 0.0:
            return []

        articles = self.articles
        ranked: list[tuple[float, int]] = []
        for doc, score in scores.items():
            if audience is not None and articles[doc].audience not in (audience, "both"):
                continue
            final = score * (min(matched[doc] / total, 1.0) ** _COVERAGE_POWER)
            if final >= MIN_SCORE:
                ranked.append((final, -doc))
        best = heapq.nlargest(limit, ranked)
        return [
            Hit(articles[-neg], round(final, 4), self._snippet(-neg, concepts, weights))
            for final, neg in best
        ]

    def _snippet(self, doc: int, concepts: Sequence[_Concept], weights: Sequence[float]) -> str:
        """The best-matching paragraph of an article, as plain text of at most 300 characters."""
        article_blocks = self.blocks[doc]
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

        best_index, best_value = 0, 0.0
        for index, block in enumerate(article_blocks):
            v = value(block.stems)
            if v > best_value:
                best_index, best_value = index, v
        block = article_blocks[best_index]
        text = " ".join(block.lines)
        if len(text) <= SNIPPET_CHARS:
            return text
        # Too long: start at the first line that matches and take what fits.
        start = 0
        if best_value > 0:
            start = next(i for i, st in enumerate(block.line_stems) if value(st) > 0)
        picked: list[str] = []
        used = 0
        for line in block.lines[start:]:
            if picked and used + 1 + len(line) > SNIPPET_CHARS:
                break
            picked.append(line)
            used += len(line) + (1 if used else 0)
        return clip(" ".join(picked), SNIPPET_CHARS)


class KnowledgeBase:
    """Articles of all locales and their search indexes. Build with `KnowledgeBase.load()`."""

    def __init__(self, articles: Iterable[Article], synonyms: Synonyms | None = None) -> None:
        stemmer = default_stemmer()
        self._synonyms = synonyms if synonyms is not None else Synonyms.load(stemmer=stemmer)
        by_locale: dict[str, list[Article]] = {}
        for article in articles:
            by_locale.setdefault(article.locale, []).append(article)
        self._indexes = {
            loc: _LocaleIndex(items, stemmer, self._synonyms) for loc, items in by_locale.items()
        }
        self._by_id = {
            loc: {a.id: a for a in index.articles} for loc, index in self._indexes.items()
        }

    @classmethod
    def load(cls, root: Path | None = None) -> KnowledgeBase:
        """Read `root/<locale>/*.md` (default: the package's articles); raise ArticleError if any
        file has broken front matter or fields."""
        root = root if root is not None else ARTICLES_DIR
        articles: list[Article] = []
        problems: list[Problem] = []
        if root.is_dir():
            for folder in sorted(p for p in root.iterdir() if p.is_dir()):
                for path in sorted(folder.glob("*.md")):
                    parsed = parse_file(path)
                    found = parsed.problems or field_problems(parsed)
                    if found:
                        problems.extend(found)
                    else:
                        articles.append(to_article(parsed, folder.name))
        if problems:
            raise ArticleError(problems)
        return cls(articles)

    @property
    def locales(self) -> list[str]:
        """Locales that have at least one article."""
        return sorted(self._indexes)

    def search(
        self, query: str, locale: str, audience: str | None = None, limit: int = 3
    ) -> list[Hit]:
        """Best articles for a free-text query, or [] when nothing reaches MIN_SCORE.

        `audience` "child" sees child and both articles, "parent" parent and both, None all.
        """
        if audience is not None and audience not in AUDIENCES:
            raise ValueError(f"audience must be one of {AUDIENCES} or None, not {audience!r}")
        index = self._indexes.get(resolve_locale(locale))
        if index is None:
            return []
        return index.search(query, audience, limit)

    def get(self, article_id: str, locale: str) -> Article | None:
        """One article by id, or None."""
        return self._by_id.get(resolve_locale(locale), {}).get(article_id)

    def articles(self, locale: str) -> list[Article]:
        """All articles of a locale, sorted by id."""
        index = self._indexes.get(resolve_locale(locale))
        return list(index.articles) if index is not None else []

    def by_topic(self, topic: str, locale: str, audience: str | None = None) -> list[Article]:
        """Articles with a topic: those whose main (first) topic it is first, then by id."""
        found = [
            a for a in self.articles(locale) if topic in a.topics and a.for_audience(audience)
        ]
        return sorted(found, key=lambda a: (a.topics[0] != topic, a.id))


@cache
def default_knowledge_base() -> KnowledgeBase:
    """The package's own articles, loaded once per process."""
    return KnowledgeBase.load()


def search(query: str, locale: str, audience: str | None = None, limit: int = 3) -> list[Hit]:
    """Search the package's own articles (see `KnowledgeBase.search`)."""
    return default_knowledge_base().search(query, locale, audience, limit)
