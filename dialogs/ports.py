"""Seams the engine depends on, defined here and implemented elsewhere (knowledge base, triage)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from dialogs.taxonomy import Risk, Signal


class ArticleLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def body(self) -> str: ...
    @property
    def topics(self) -> Sequence[str]: ...


class HitLike(Protocol):
    @property
    def article(self) -> ArticleLike: ...
    @property
    def score(self) -> float: ...
    @property
    def snippet(self) -> str: ...


class KnowledgeSource(Protocol):
    """What the engine needs from the knowledge base."""

    def search(
        self, query: str, locale: str, audience: str | None = None, limit: int = 3
    ) -> Sequence[HitLike]: ...

    def by_topic(
        self, topic: str, locale: str, audience: str | None = None
    ) -> Sequence[ArticleLike]: ...

    def get(self, article_id: str, locale: str) -> ArticleLike | None: ...


class AssessmentLike(Protocol):
    @property
    def danger(self) -> bool: ...
    @property
    def signals(self) -> Sequence[Signal]: ...
    @property
    def category(self) -> str: ...
    @property
    def risk(self) -> Risk: ...
    @property
    def check_in(self) -> bool: ...
    @property
    def about(self) -> str: ...


class Triage(Protocol):
    """Runs on every inbound text before any flow sees it; ``context`` is the same
    conversation's earlier texts, oldest first."""

    def __call__(
        self, text: str, locale: str, context: Sequence[str] = ()
    ) -> AssessmentLike: ...
