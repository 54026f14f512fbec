"""Neutral messages between channels and the dialog engine. No transport types cross this line."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

# A bot command ("/help", "/start@helpline_bot ..."): the engine answers it, and triage does
# not read its word as a call for help typed alone.
COMMAND = re.compile(r"^/([a-zA-Z_]+)(?:@\S+)?(?:\s|$)")


class Channel(StrEnum):
    TELEGRAM = "telegram"
    VK = "vk"
    CONSOLE = "console"


class ContentKind(StrEnum):
    """What an inbound message carries. Anything but text, photo and document is unsupported."""

    TEXT = "text"
    PHOTO = "photo"
    DOCUMENT = "document"
    STICKER = "sticker"
    VOICE = "voice"
    VIDEO = "video"
    LOCATION = "location"
    POLL = "poll"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file a user sent: the platform's reference to it, never the bytes."""

    kind: ContentKind
    file_ref: str
    size: int | None = None
    mime: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Button:
    label: str
    payload: str


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message or button press from a child or parent."""

    channel: Channel
    user_id: str
    chat_id: str
    text: str | None = None
    payload: str | None = None
    attachments: tuple[Attachment, ...] = ()
    locale_hint: str | None = None
    update_id: str | None = None
    kind: ContentKind = ContentKind.TEXT
    edited: bool = False  # the child edited an earlier message: the new text is triaged too
    # The flood limit's verdict taken at intake, before the journal ("ok", or "warn": the first
    # refused of a flood, answered with one "slow down"); None: not taken yet (`stages.Flood`).
    flood: str | None = None


@dataclass(frozen=True, slots=True)
class Address:
    """Where an outbound message goes. The desk is addressed as channel 'desk'."""

    channel: str
    chat_id: str

    @property
    def is_desk(self) -> bool:
        return self.channel == DESK


DESK = "desk"


class DeskEvent(StrEnum):
    """What a desk notice is about, so a desk channel can render it its own way."""

    CASE_OPENED = "case_opened"
    CASE_RAISED = "case_raised"
    CHILD_MESSAGE = "child_message"
    CHILD_LEFT = "child_left"
    CASE_UPDATED = "case_updated"
    UNREACHABLE = "unreachable"
    # What a counsellor did, from whichever desk: published once, rendered by every desk (the
    # Telegram topic and card, the web console's live pages). `meta["by"]`: who did it.
    CASE_TAKEN = "case_taken"
    CASE_RELEASED = "case_released"
    CASE_CLOSED = "case_closed"  # meta["outcome"]
    RISK_CHANGED = "risk_changed"  # meta["old"]: the risk before


@dataclass(frozen=True, slots=True)
class Outbound:
    """One message to send. Buttons are rows; every message also makes sense as plain text."""

    to: Address
    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    attachments: tuple[Attachment, ...] = ()
    case_id: int | None = None
    desk_event: DeskEvent | None = None
    critical: bool = False
    meta: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    @property
    def plain_text(self) -> str:
        """The message with its buttons as numbered options, for channels without buttons."""
        labels = [b.label for row in self.buttons for b in row]
        if not labels:
            return self.text
        options = "\n".join(f"  {i}. {label}" for i, label in enumerate(labels, 1))
        return f"{self.text}\n{options}"


def outbound_to_dict(message: Outbound) -> dict[str, object]:
    """A JSON-safe form of an outbound message, for the durable outbox."""
    return {
        "channel": message.to.channel,
        "chat_id": message.to.chat_id,
        "text": message.text,
        "buttons": [[[b.label, b.payload] for b in row] for row in message.buttons],
        "attachments": [
            [str(a.kind), a.file_ref, a.size, a.mime, a.name] for a in message.attachments
        ],
        "case_id": message.case_id,
        "desk_event": str(message.desk_event) if message.desk_event else None,
        "critical": message.critical,
        # The line's flags for the desk (danger and its source, check-in, paging, ...); the
        # outbox row's own id is not part of the message.
        "meta": {k: v for k, v in message.meta.items() if k != "outbox_id"},
    }


def outbound_from_dict(data: dict[str, object]) -> Outbound:
    rows = data.get("buttons") or []
    atts = data.get("attachments") or []
    assert isinstance(rows, list) and isinstance(atts, list)
    event = data.get("desk_event")
    case_id = data.get("case_id")
    meta = data.get("meta")
    return Outbound(
        to=Address(str(data["channel"]), str(data["chat_id"])),
        text=str(data.get("text") or ""),
        buttons=tuple(tuple(Button(str(b[0]), str(b[1])) for b in row) for row in rows),
        attachments=tuple(
            Attachment(ContentKind(str(a[0])), str(a[1]), a[2], a[3], a[4]) for a in atts
        ),
        case_id=int(case_id) if isinstance(case_id, int) else None,
        desk_event=DeskEvent(str(event)) if event else None,
        critical=bool(data.get("critical")),
        meta={str(k): str(v) for k, v in meta.items()} if isinstance(meta, dict) else {},
    )


def inbound_to_dict(message: Inbound) -> dict[str, object]:
    """A JSON-safe form of an inbound message, for the inbox journal."""
    return {
        "channel": str(message.channel),
        "user_id": message.user_id,
        "chat_id": message.chat_id,
        "text": message.text,
        "payload": message.payload,
        "attachments": [
            [str(a.kind), a.file_ref, a.size, a.mime, a.name] for a in message.attachments
        ],
        "locale_hint": message.locale_hint,
        "update_id": message.update_id,
        "kind": str(message.kind),
        "edited": message.edited,
        "flood": message.flood,
    }


def inbound_from_dict(data: dict[str, object]) -> Inbound:
    atts = data.get("attachments") or []
    assert isinstance(atts, list)
    text, payload, hint, update = (
        data.get(k) for k in ("text", "payload", "locale_hint", "update_id")
    )
    return Inbound(
        channel=Channel(str(data["channel"])),
        user_id=str(data["user_id"]),
        chat_id=str(data["chat_id"]),
        text=str(text) if text is not None else None,
        payload=str(payload) if payload is not None else None,
        attachments=tuple(
            Attachment(ContentKind(str(a[0])), str(a[1]), a[2], a[3], a[4]) for a in atts
        ),
        locale_hint=str(hint) if hint is not None else None,
        update_id=str(update) if update is not None else None,
        kind=ContentKind(str(data.get("kind") or "text")),
        edited=bool(data.get("edited", False)),
        flood=str(data["flood"]) if data.get("flood") else None,
    )
