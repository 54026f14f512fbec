"""The names of the flows and of the counselling states the engine reasons about."""

from __future__ import annotations

from enum import StrEnum


class Flow(StrEnum):
    START = "start"
    CHILD_REPORT = "child_report"
    SAFETY_QUESTION = "safety_question"
    PARENT_HELP = "parent_help"
    COUNSELLING = "counselling"


class Start(StrEnum):
    """States of the start flow."""

    ROLE = "role"
    MENU = "menu"


class Chat(StrEnum):
    """States of the counselling flow."""

    WAITING = "waiting"
    CONNECTED = "connected"
    ENDING = "ending"  # "end the chat?" asked
    RATING = "rating"
    COMMENT = "comment"
    FINISHED = "finished"


IN_CHAT = frozenset({Chat.WAITING, Chat.CONNECTED, Chat.ENDING})
