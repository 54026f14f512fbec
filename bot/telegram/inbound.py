"""Telegram updates become neutral `Inbound` messages: text, button presses, files, and a kind
for everything the engine does not read (stickers, voice, location, polls...) so it can answer
kindly."""

from __future__ import annotations

from aiogram.enums import ContentType
from aiogram.types import CallbackQuery, Message

from dialogs.messages import Attachment, Channel, ContentKind, Inbound

KINDS: dict[str, ContentKind] = {
    ContentType.TEXT: ContentKind.TEXT,
    ContentType.PHOTO: ContentKind.PHOTO,
    ContentType.DOCUMENT: ContentKind.DOCUMENT,
    ContentType.STICKER: ContentKind.STICKER,
    ContentType.VOICE: ContentKind.VOICE,
    ContentType.AUDIO: ContentKind.VOICE,
    ContentType.VIDEO: ContentKind.VIDEO,
    ContentType.VIDEO_NOTE: ContentKind.VIDEO,
    ContentType.ANIMATION: ContentKind.VIDEO,
    ContentType.LOCATION: ContentKind.LOCATION,
    ContentType.VENUE: ContentKind.LOCATION,
    ContentType.POLL: ContentKind.POLL,
}


def content_kind(message: Message) -> ContentKind:
    return KINDS.get(message.content_type, ContentKind.OTHER)


def attachments_of(message: Message) -> tuple[Attachment, ...]:
    """Files the engine keeps as evidence: the largest size of a photo, or a document."""
    if message.photo:
        photo = message.photo[-1]  # sizes come smallest first
        return (Attachment(ContentKind.PHOTO, photo.file_id, photo.file_size, "image/jpeg"),)
    if message.document:
        doc = message.document
        return (Attachment(ContentKind.DOCUMENT, doc.file_id, doc.file_size, doc.mime_type,
                           doc.file_name),)
    return ()


def message_to_inbound(
    message: Message, update_id: int | None, *, edited: bool = False
) -> Inbound | None:
    """A private message from a person; None for anything else (channel posts, bots).
    ``edited``: the child changed a message they had sent (an ``edited_message`` update):
    triage reads the new text like any other."""
    user = message.from_user
    if user is None or user.is_bot:
        return None
    return Inbound(
        channel=Channel.TELEGRAM,
        user_id=str(user.id),
        chat_id=str(message.chat.id),
        # A photo's caption is its text: triage reads it like any message.
        text=message.text if message.text is not None else message.caption,
        attachments=attachments_of(message),
        locale_hint=user.language_code,
        update_id=str(update_id) if update_id is not None else None,
        kind=content_kind(message),
        edited=edited,
    )


def callback_to_inbound(query: CallbackQuery, update_id: int | None) -> Inbound | None:
    """A button press. Its payload is checked against the conversation's state by the engine."""
    if not query.data or query.from_user.is_bot:
        return None
    chat_id = query.message.chat.id if query.message is not None else query.from_user.id
    return Inbound(
        channel=Channel.TELEGRAM,
        user_id=str(query.from_user.id),
        chat_id=str(chat_id),
        payload=query.data,
        locale_hint=query.from_user.language_code,
        update_id=str(update_id) if update_id is not None else None,
    )
