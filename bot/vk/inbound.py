"""VK events in, neutral `Inbound` messages out.

A `message_new` object carries the message and `client_info`: which keyboards the child's app can
show and its interface language (https://dev.vk.com/ru/api/bots/development/messages). A callback
button press arrives as `message_event` and carries no `client_info`.
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.vk.render import decode_payload
from dialogs.messages import Attachment, Channel, ContentKind, Inbound

# Peer ids from 2e9 up are group chats; negative ones are communities. The help line only talks
# with people in private messages.
CHAT_START_ID = 2_000_000_000
# VK's interface languages (`lang_id`) the help line has texts for.
LANG_IDS = {0: "ru", 3: "en"}
OTHER_KINDS = {
    "sticker": ContentKind.STICKER,
    "audio_message": ContentKind.VOICE,
    "video": ContentKind.VIDEO,
    "poll": ContentKind.POLL,
}


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """What a child's VK app can show. Unknown (no message seen yet) means plain text only."""

    keyboard: bool = False
    inline: bool = False
    callback: bool = False
    lang_id: int | None = None

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any] | None) -> ClientInfo:
        if not raw:
            return cls()
        actions = raw.get("button_actions") or ()
        lang = raw.get("lang_id")
        return cls(
            keyboard=bool(raw.get("keyboard")),
            inline=bool(raw.get("inline_keyboard")),
            callback="callback" in actions,
            lang_id=lang if isinstance(lang, int) else None,
        )


class ClientRegistry:
    """The latest `client_info` of each peer, for rendering replies (kept in memory only)."""

    def __init__(self) -> None:
        self._clients: dict[str, ClientInfo] = {}

    def remember(self, peer: str, info: ClientInfo) -> None:
        self._clients[peer] = info

    def get(self, peer: str) -> ClientInfo:
        return self._clients.get(peer, ClientInfo())


def is_private_peer(peer_id: int) -> bool:
    return 0 < peer_id < CHAT_START_ID


def locale_for(info: ClientInfo, default_locale: str) -> str:
    """VK sends no language with a message, only the app's `lang_id`: 0 is Russian, 3 English."""
    if info.lang_id is None:
        return default_locale
    return LANG_IDS.get(info.lang_id, default_locale)


def _largest_photo(photo: Mapping[str, Any]) -> str | None:
    sizes = [s for s in photo.get("sizes") or () if isinstance(s, Mapping) and s.get("url")]
    orig = photo.get("orig_photo")
    if isinstance(orig, Mapping) and orig.get("url"):
        sizes.append(orig)
    if not sizes:
        return None
    best = max(sizes, key=lambda s: int(s.get("width") or 0) * int(s.get("height") or 0))
    return str(best["url"])


def _doc_mime(doc: Mapping[str, Any]) -> str | None:
    ext = str(doc.get("ext") or "").lower()
    return mimetypes.guess_type(f"file.{ext}")[0] if ext.isalnum() else None


def _files(items: Iterable[Any]) -> tuple[list[Attachment], list[ContentKind]]:
    """Photos and documents as evidence attachments; the kinds of everything else."""
    files: list[Attachment] = []
    others: list[ContentKind] = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        kind = str(item.get("type") or "")
        body = item.get(kind)
        if kind == "photo" and isinstance(body, Mapping):
            url = _largest_photo(body)
            if url:
                files.append(Attachment(ContentKind.PHOTO, url, None, "image/jpeg"))
        elif kind == "doc" and isinstance(body, Mapping) and body.get("url"):
            size = body.get("size")
            files.append(
                Attachment(
                    ContentKind.DOCUMENT,
                    str(body["url"]),
                    size if isinstance(size, int) else None,
                    _doc_mime(body),
                    str(body.get("title") or "") or None,
                )
            )
        elif kind != "link":  # a link preview comes with the link in the text
            others.append(OTHER_KINDS.get(kind, ContentKind.OTHER))
    return files, others


def message_attachments(message: Mapping[str, Any]) -> tuple[tuple[Attachment, ...], ContentKind]:
    """The evidence files of a message (its own and those of messages it forwards, one level
    deep: children forward what they were sent) and the message's content kind."""
    files, others = _files(message.get("attachments") or ())
    for forwarded in message.get("fwd_messages") or ():
        if isinstance(forwarded, Mapping):
            more, _ = _files(forwarded.get("attachments") or ())
            files.extend(more)
    text = str(message.get("text") or "").strip()
    if any(f.kind is ContentKind.PHOTO for f in files):
        kind = ContentKind.PHOTO
    elif files:
        kind = ContentKind.DOCUMENT
    elif text:
        # Words always reach triage, even when they come with a sticker or a video.
        kind = ContentKind.TEXT
    elif message.get("geo"):
        kind = ContentKind.LOCATION
    elif others:
        kind = others[0]
    else:
        kind = ContentKind.TEXT
    return tuple(files), kind


def _start_command(raw: object) -> bool:
    """VK's "Start" button sends the payload {"command": "start"}."""
    if not isinstance(raw, str):
        return False
    try:
        data = json.loads(raw)
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("command") == "start"


def message_inbound(
    message: Mapping[str, Any], info: ClientInfo, *, update_id: str, default_locale: str
) -> Inbound | None:
    """A `message_new` from a person in private messages as an `Inbound`; None for anything
    else (group chats, other communities, our own messages)."""
    peer_id = int(message.get("peer_id") or 0)
    from_id = int(message.get("from_id") or 0)
    if not is_private_peer(peer_id) or from_id != peer_id or message.get("out"):
        return None
    attachments, kind = message_attachments(message)
    text: str | None = str(message.get("text") or "").strip() or None
    raw_payload = message.get("payload")
    payload = decode_payload(raw_payload)
    if payload is not None:
        text = None  # a keyboard button: its label came as text, its payload is what counts
    elif _start_command(raw_payload):
        text = "/start"
    return Inbound(
        channel=Channel.VK,
        user_id=str(from_id),
        chat_id=str(peer_id),
        text=text,
        payload=payload,
        attachments=attachments,
        locale_hint=locale_for(info, default_locale),
        update_id=update_id,
        kind=kind,
    )


def callback_inbound(obj: Mapping[str, Any], *, update_id: str) -> Inbound | None:
    """A callback button press (`message_event`) as an `Inbound`; None if not ours."""
    user_id = int(obj.get("user_id") or 0)
    peer_id = int(obj.get("peer_id") or 0)
    payload = decode_payload(obj.get("payload"))
    if payload is None or not is_private_peer(peer_id) or user_id != peer_id:
        return None
    return Inbound(
        channel=Channel.VK,
        user_id=str(user_id),
        chat_id=str(peer_id),
        payload=payload,
        update_id=update_id,
    )
