"""Articles in the chat: one screen first, more on request, every link kept.

Every article's first chat page (its summary) is at most 600 characters, and every web link on
every page keeps its address in the text each channel sends (Telegram, VK with and without a
keyboard, the console). In a conversation the child gets the summary, "read more" pages
through the rest with nothing cut, a link to another article is a button that opens it, and a
forged "read more" is refused kindly.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from bot.telegram.limits import split_text as telegram_parts
from bot.vk.render import render as vk_render
from dialogs.messages import Address, Button, Outbound
from dialogs.render import article_page
from knowledge_base import KnowledgeBase
from tests.conftest import Chat

URL = re.compile(r"\]\((https?://[^)\s]+|mailto:[^)\s]+)\)")


def _channels(text: str) -> dict[str, str]:
    """What each channel puts on the screen for this text (with one button under it)."""
    message = Outbound(to=Address("x", "1"), text=text, buttons=((Button("ok", "g|x"),),))
    return {
        "telegram": "\n".join(telegram_parts(text)),
        "vk": "\n".join(p.text for p in vk_render(message, keyboard_ok=True, inline=True,
                                                   callback=True)),
        "vk-no-keyboard": "\n".join(p.text for p in vk_render(message, keyboard_ok=False,
                                                              inline=False, callback=False)),
        "console": text,
    }


@pytest.mark.parametrize("locale", ["ru", "en"])
def test_every_first_page_fits_a_screen_and_every_link_keeps_its_address(
    kb: KnowledgeBase, locale: str
) -> None:
    articles = list(kb.articles(locale))
    assert len(articles) >= 25
    for article in articles:
        first = article_page(article, 0)
        assert first is not None and len(first.text) <= 600, (article.id, len(first.text))
        pages = article.chat_pages(1000)
        for number, markdown in enumerate(pages):
            page = article_page(article, number)
            assert page is not None and not page.text.rstrip().endswith("…"), "never cut short"
            for url in URL.findall(markdown):
                address = url.removeprefix("mailto:")
                for channel, shown in _channels(page.text).items():
                    assert address in shown, (article.id, number, channel, address)


async def test_summary_first_then_read_more_pages_through_the_rest(
    chat_factory: Callable[..., Chat], kb: KnowledgeBase
) -> None:
    chat = chat_factory()
    await chat.start_as_child()
    await chat.press("спросить")
    await chat.say("меня взломали в вк что делать")
    assert "Вот что я нашёл" in chat.text
    article = kb.get("account-hacked", "ru")
    assert article is not None
    summary = article_page(article, 0)
    assert summary is not None and summary.text in chat.text
    assert "Это помогло" in chat.buttons and "Поговорить с человеком" in chat.buttons
    seen = [summary.text]
    while "Читать дальше" in chat.buttons:
        await chat.press("Читать дальше")
        seen.append(chat.replies[0].text)
        assert "Поговорить с человеком" in chat.buttons, "a person is one press away"
    assert len(seen) == len(article.chat_pages(1000)) >= 2
    body_words = set(re.findall(r"\w{6,}", re.sub(r"\(.*?\)", "", article.body)))
    shown_words = set(re.findall(r"\w{6,}", "\n".join(seen[1:])))
    assert body_words <= shown_words, "nothing of the article is cut"


async def test_a_link_to_another_article_is_a_button_and_forged_pages_are_refused(
    chat_factory: Callable[..., Chat], kb: KnowledgeBase
) -> None:
    linking = next(a for a in kb.articles("ru") if "](kb:" in a.summary + a.body)
    chat = chat_factory()
    await chat.start_as_child()
    for number in range(len(linking.chat_pages(1000))):
        await chat.payload(f"g|more={linking.id}:{number}")
        opens = [b for b in chat.buttons if b.startswith("Подробнее:")]
        if opens:
            break
    assert opens, f"{linking.id} links to another article: a button opens it"
    payload = chat.button(opens[0]).payload
    await chat.press(opens[0])
    target = kb.get(payload.removeprefix("g|article="), "ru")
    assert target is not None and target.title in chat.text
    for forged in ("g|more=no-such-article:1", f"g|more={linking.id}:99", "g|more=:x",
                   f"g|more={linking.id}:-1"):
        await chat.payload(forged)
        assert "кнопка уже не действует" in chat.text, forged
