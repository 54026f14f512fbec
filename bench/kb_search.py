"""Benchmark knowledge-base search on a synthetic corpus of 10,000 articles per locale.

The corpus is made from the real articles: each synthetic article takes its title, keywords and
paragraphs from random real articles of the same locale (so word frequencies look real), with a
random audience and topics. Queries are the evaluation queries plus variants with typos, dropped
and added words, and phrases taken from real keyword lists.

    .venv/bin/python bench/kb_search.py [--articles 10000] [--queries 3000] [--seed 1]

Prints build time and, per locale, median and p99 search latency in milliseconds.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from dataclasses import replace
from pathlib import Path

import yaml

from knowledge_base import Article, KnowledgeBase
from knowledge_base.markdown import blocks

ROOT = Path(__file__).resolve().parent.parent
QUERIES = ROOT / "tests" / "knowledge_base"
FILLERS = {
    "ru": ["помогите", "что делать", "пожалуйста", "срочно", "мне 13", "короче", "вообще"],
    "en": ["help", "what do i do", "please", "asap", "im 13", "idk", "seriously"],
}


def synthetic(real: list[Article], count: int, rng: random.Random) -> list[Article]:
    """`count` articles recombined from the real ones of one locale."""
    paragraphs = [" ".join(lines) for a in real for lines in blocks(a.body)]
    keywords = [k for a in real for k in a.keywords]
    result = []
    for n in range(count):
        base = rng.choice(real)
        other = rng.choice(real)
        body_parts = rng.sample(paragraphs, k=min(len(paragraphs), rng.randint(4, 9)))
        headings = [f"## {rng.choice(paragraphs).split('.')[0][:40]}" for _ in range(2)]
        body = "\n\n".join(
            [body_parts[0], headings[0], *body_parts[1:4], headings[1], *body_parts[4:]]
        )
        result.append(
            replace(
                base,
                id=f"{base.id}-{n}",
                title=rng.choice([base.title, other.title]),
                audience=rng.choice(["child", "parent", "both"]),
                topics=tuple(sorted(set(base.topics[:1] + other.topics[:1]))),
                keywords=(
                    *rng.sample(base.keywords, k=min(10, len(base.keywords))),
                    *rng.sample(keywords, k=8),
                ),
                body=body,
            )
        )
    return result


def typo(word: str, rng: random.Random) -> str:
    """One random edit: drop, double, swap or replace a letter."""
    if len(word) < 5:
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(4)
    if kind == 0:
        return word[:i] + word[i + 1 :]
    if kind == 1:
        return word[:i] + word[i] + word[i:]
    if kind == 2:
        return word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]
    return word[:i] + rng.choice("аеиоуabcdeo") + word[i + 1 :]


def queries(locale: str, real: list[Article], count: int, rng: random.Random) -> list[str]:
    """Evaluation queries and realistic variants of them."""
    with (QUERIES / f"queries_{locale}.yaml").open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    seeds = [item["q"] for item in data["queries"]] + list(data["out_of_scope"])
    keywords = [k for a in real for k in a.keywords]
    result = list(seeds)
    while len(result) < count:
        kind = rng.randrange(4)
        if kind == 0:
            words = rng.choice(seeds).split()
            j = rng.randrange(len(words))
            words[j] = typo(words[j], rng)
            result.append(" ".join(words))
        elif kind == 1:
            words = rng.choice(seeds).split()
            if len(words) > 2:
                words.pop(rng.randrange(len(words)))
            result.append(" ".join(words))
        elif kind == 2:
            result.append(f"{rng.choice(seeds)} {rng.choice(FILLERS[locale])}")
        else:
            result.append(f"{rng.choice(FILLERS[locale])} {rng.choice(keywords)}")
    rng.shuffle(result)
    return result[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=10_000, help="per locale")
    parser.add_argument("--queries", type=int, default=3_000, help="per locale")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    real = KnowledgeBase.load()
    corpus = [a for loc in ("ru", "en") for a in synthetic(real.articles(loc), args.articles, rng)]
    started = time.perf_counter()
    kb = KnowledgeBase(corpus)
    build = time.perf_counter() - started
    print(f"corpus: {args.articles} articles per locale, index built in {build:.1f} s")

    for locale in ("ru", "en"):
        batch = queries(locale, real.articles(locale), args.queries, rng)
        audiences = [rng.choice([None, "child", "parent"]) for _ in batch]
        for q in batch[:50]:  # warm-up: first-call imports and allocations
            kb.search(q, locale)
        times = []
        answered = 0
        for q, audience in zip(batch, audiences, strict=True):
            t0 = time.perf_counter()
            hits = kb.search(q, locale, audience=audience)
            times.append((time.perf_counter() - t0) * 1000)
            answered += bool(hits)
        times.sort()
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
        print(
            f"{locale}: {len(batch)} queries, median {statistics.median(times):.2f} ms, "
            f"p99 {p99:.2f} ms, max {times[-1]:.2f} ms, answered {answered / len(batch):.0%}"
        )


if __name__ == "__main__":
    main()
