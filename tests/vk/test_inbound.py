"""`message_new` and `message_event` objects as the engine's `Inbound`."""

from __future__ import annotations

from typing import Any

from bot.vk.inbound import ClientInfo, callback_inbound, locale_for, message_inbound
from dialogs.messages import Channel, ContentKind
from tests.vk.fake_vk import KEYBOARD_ONLY_CLIENT, MODERN_CLIENT, NO_KEYBOARD_CLIENT, FakeVk


def _inbound(fake: FakeVk, event: dict[str, Any], default: str = "ru") -> Any:
    obj = event["object"]
    return message_inbound(
        obj["message"],
        ClientInfo.from_raw(obj.get("client_info")),
        update_id=event["event_id"],
        default_locale=default,
    )


def test_client_info_flags() -> None:
    modern = ClientInfo.from_raw(MODERN_CLIENT)
    assert (modern.keyboard, modern.inline, modern.callback) == (True, True, True)
    old = ClientInfo.from_raw(KEYBOARD_ONLY_CLIENT)
    assert (old.keyboard, old.inline, old.callback) == (True, False, False)
    assert ClientInfo.from_raw(NO_KEYBOARD_CLIENT) == ClientInfo()
    assert ClientInfo.from_raw(None) == ClientInfo()


def test_locale_from_lang_id() -> None:
    assert locale_for(ClientInfo(lang_id=0), "en") == "ru"
    assert locale_for(ClientInfo(lang_id=3), "ru") == "en"
    assert locale_for(ClientInfo(lang_id=1), "en") == "en"  # Ukrainian UI: the default
    assert locale_for(ClientInfo(), "ru") == "ru"  # VK sent no language


def test_text_message(fake_vk: FakeVk) -> None:
    event = fake_vk.message_new(55, "  привет  ", client_info={**MODERN_CLIENT, "lang_id": 3})
    inbound = _inbound(fake_vk, event)
    assert inbound.channel is Channel.VK
    assert (inbound.user_id, inbound.chat_id) == ("55", "55")
    assert inbound.text == "привет" and inbound.payload is None
    assert inbound.locale_hint == "en"
    assert inbound.update_id == event["event_id"]
    assert inbound.kind is ContentKind.TEXT


def test_text_button_press_carries_the_payload_not_the_label(fake_vk: FakeVk) -> None:
    event = fake_vk.message_new(55, "Да", payload='{"p":"cr|safe_now|yes"}')
    inbound = _inbound(fake_vk, event)
    assert inbound.payload == "cr|safe_now|yes" and inbound.text is None


def test_vk_start_button_is_the_start_command(fake_vk: FakeVk) -> None:
    inbound = _inbound(fake_vk, fake_vk.message_new(55, "Начать", payload='{"command":"start"}'))
    assert inbound.text == "/start" and inbound.payload is None


def test_photo_takes_the_largest_size_and_documents_their_url(fake_vk: FakeVk) -> None:
    photo = fake_vk.photo("shot.jpg", b"jpeg")
    doc = fake_vk.doc("chat.pdf", b"%PDF-1.4", title="переписка.pdf")
    inbound = _inbound(fake_vk, fake_vk.message_new(55, "", attachments=[photo, doc]))
    assert inbound.kind is ContentKind.PHOTO
    first, second = inbound.attachments
    assert first.kind is ContentKind.PHOTO and first.file_ref.endswith("/files/shot.jpg")
    assert second.kind is ContentKind.DOCUMENT and second.file_ref.endswith("/files/chat.pdf")
    assert (second.size, second.mime, second.name) == (8, "application/pdf", "переписка.pdf")


def test_forwarded_screenshots_are_evidence_too(fake_vk: FakeVk) -> None:
    photo = fake_vk.photo("fwd.jpg", b"jpeg")
    event = fake_vk.message_new(55, "", fwd_messages=[{"from_id": 9, "attachments": [photo]}])
    inbound = _inbound(fake_vk, event)
    assert inbound.kind is ContentKind.PHOTO and len(inbound.attachments) == 1


def test_unsupported_content_and_text_with_a_link(fake_vk: FakeVk) -> None:
    sticker = {"type": "sticker", "sticker": {"sticker_id": 1}}
    assert _inbound(fake_vk, fake_vk.message_new(55, "", attachments=[sticker])).kind is (
        ContentKind.STICKER
    )
    voice = {"type": "audio_message", "audio_message": {"duration": 3}}
    assert _inbound(fake_vk, fake_vk.message_new(55, "", attachments=[voice])).kind is (
        ContentKind.VOICE
    )
    link = {"type": "link", "link": {"url": "https://vk.com/x"}}
    with_link = _inbound(fake_vk, fake_vk.message_new(55, "смотри vk.com/x", attachments=[link]))
    assert with_link.kind is ContentKind.TEXT and with_link.text == "смотри vk.com/x"


def test_group_chats_and_communities_are_ignored(fake_vk: FakeVk) -> None:
    in_chat = fake_vk.message_new(55, "привет")
    in_chat["object"]["message"]["peer_id"] = 2_000_000_001
    assert _inbound(fake_vk, in_chat) is None
    community = fake_vk.message_new(-5, "привет")
    assert _inbound(fake_vk, community) is None


def test_callback_press() -> None:
    obj = {"user_id": 55, "peer_id": 55, "event_id": "abc", "payload": {"p": "g|menu"}}
    inbound = callback_inbound(obj, update_id="ev-1")
    assert inbound is not None and inbound.payload == "g|menu" and inbound.locale_hint is None
    assert callback_inbound({**obj, "payload": {"x": 1}}, update_id="ev-2") is None
