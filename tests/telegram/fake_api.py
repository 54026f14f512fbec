"""A fake Telegram Bot API on 127.0.0.1, for end-to-end tests through real HTTP.

The real aiogram `Bot` and `Dispatcher` talk to it unchanged (`TELEGRAM_API_URL` points here). It
records every call, answers like Telegram does (messages, topics, files, errors), and plays the
people: children in private chats and counsellors in the staff forum, whose messages and button
presses it queues for `getUpdates` (or builds as JSON for a webhook POST).

One staff forum (`STAFF_CHAT`) unless a test adds more with `add_group`: each group numbers its
topics from 50, as Telegram numbers them per chat, so thread ids collide across groups.

Tests read like conversations:

    await tg.child_says(CHILD, "привет")
    reply = await tg.next_call("sendMessage", chat_id=CHILD)

The load benchmark (`bench/loadtest`) runs the same fake for minutes with a thousand simulated
people: `FakeTelegram(record=False)` keeps no record of calls, forgets updates once the bot has
confirmed them and messages in private chats (the bot edits only the staff groups' messages),
and `listeners` see every successful call as it is answered (the benchmark routes the bot's
messages to the people that way). `offer(update)` makes an update available at once, from
synchronous code, and returns that moment.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TOKEN = "123456:TEST-token-for-the-fake-api"
BOT_ID = 123456
STAFF_CHAT = -1001234567890


@dataclass
class Call:
    """One Bot API request as the fake received it: form fields as strings, JSON decoded."""

    method: str
    params: dict[str, Any]
    status: int = 200
    result: Any = None
    at: float = field(default_factory=time.monotonic)

    @property
    def message_id(self) -> int:
        """The id of the message this call created (or edited)."""
        return int(self.result["message_id"])

    def __getitem__(self, key: str) -> Any:
        return self.params[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.params.get(key, default)

    @property
    def chat_id(self) -> int | None:
        value = self.params.get("chat_id")
        return int(value) if value is not None else None

    @property
    def thread(self) -> int | None:
        value = self.params.get("message_thread_id")
        return int(value) if value is not None else None

    @property
    def text(self) -> str:
        return str(self.params.get("text") or self.params.get("caption") or "")

    @property
    def buttons(self) -> list[tuple[str, str]]:
        markup = self.params.get("reply_markup") or {}
        return [(b["text"], b.get("callback_data", "")) for row in
                markup.get("inline_keyboard", []) for b in row]

    def button(self, label: str) -> str:
        """The callback data of the button whose label contains `label`."""
        for text, data in self.buttons:
            if label.casefold() in text.casefold():
                return data
        raise AssertionError(f"no button {label!r} in {self.buttons}")


@dataclass
class Failure:
    method: str
    status: int
    description: str
    match: Callable[[dict[str, Any]], bool]
    times: int
    retry_after: int | None = None


class FakeTelegram:
    """The Bot API, the people, and a record of everything the bot did.

    `record=False` (a long load run): no record of calls, confirmed updates and private chats'
    messages forgotten. `long_poll` caps how long a `getUpdates` waits for an update (seconds).
    """

    def __init__(self, token: str = TOKEN, *, record: bool = True,
                 long_poll: float = 0.1) -> None:
        self.token = token
        self.record = record
        self.long_poll = long_poll
        self.calls: list[Call] = []
        # Updates in update-id order: every one pushed, or (record=False) the unconfirmed ones.
        self.updates: list[dict[str, Any]] = []
        # Called with each successful call (not getUpdates), before the bot gets the answer.
        self.listeners: list[Callable[[Call], None]] = []
        self.requests = 0  # every Bot API request, getUpdates included
        self.pushed = 0  # updates made available
        self.confirmed = 0  # updates the bot confirmed (a getUpdates offset above their id)
        self._offset = 0
        self.handed: dict[int, float] = {}  # update id -> when getUpdates first handed it out
        self._waiters: list[asyncio.Future[None]] = []
        self._consumed: set[int] = set()
        self._changed = asyncio.Condition()
        self._update_ids = itertools.count(1000)
        self._message_ids = itertools.count(1)
        self._thread_ids = itertools.count(50)
        self._file_ids = itertools.count(1)
        self.failures: list[Failure] = []
        # The first staff group's topics (thread -> name); every group's in `group_topics`.
        self.topics: dict[int, str] = {}
        self.staff_chats: list[int] = [STAFF_CHAT]
        self.group_topics: dict[int, dict[int, str]] = {STAFF_CHAT: self.topics}
        self._group_threads: dict[int, Iterator[int]] = {STAFF_CHAT: self._thread_ids}
        self.closed_topics: set[int] = set()  # threads, in any group
        # Files the bot uploaded (not sent by file id): (chat, thread, bytes).
        self.uploads: list[tuple[int, Any, bytes]] = []
        self.non_forums: set[int] = set()  # staff groups with Topics turned off
        self.pinned: set[int] = set()
        self.files: dict[str, bytes] = {}
        self.polls = 0
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        # The staff group as Telegram describes it; tests change these to break it.
        self.staff_is_forum = True
        self.bot_status = "administrator"
        self.bot_can_manage_topics = True
        self._runner: web.AppRunner | None = None
        self.url = ""

    # ------------------------------------------------------------------ server
    async def start(self) -> str:
        app = web.Application()
        app.router.add_post(f"/bot{self.token}/{{method}}", self._api)
        app.router.add_get(f"/file/bot{self.token}/{{path:.+}}", self._file)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        self._wake()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        form = await request.post()
        params: dict[str, Any] = {}
        for key, value in form.items():
            if isinstance(value, web.FileField):  # an uploaded file: its bytes
                params[key] = value.file.read()
                continue
            if isinstance(value, str) and value[:1] in "[{":
                try:
                    params[key] = json.loads(value)
                    continue
                except ValueError:
                    pass
            params[key] = value
        self.requests += 1
        if method == "getUpdates":  # counted, not recorded: polling would flood the record
            self.polls += 1
            return await self._get_updates(params)
        call = Call(method, params)
        failure = self._failure(method, params)
        if failure is not None:
            call.status = failure.status
            await self._record(call)
            body: dict[str, Any] = {"ok": False, "error_code": failure.status,
                                    "description": failure.description}
            if failure.retry_after is not None:
                body["parameters"] = {"retry_after": failure.retry_after}
            return web.json_response(body, status=failure.status)
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            call.status = 404
            await self._record(call)
            return web.json_response({"ok": False, "error_code": 404,
                                      "description": f"Not Found: method {method} not faked"},
                                     status=404)
        try:
            result = handler(params)
        except _BadRequest as exc:
            call.status = 400
            await self._record(call)
            return web.json_response({"ok": False, "error_code": 400,
                                      "description": f"Bad Request: {exc}"}, status=400)
        call.result = result
        await self._record(call)
        for listener in self.listeners:
            listener(call)
        return web.json_response({"ok": True, "result": result})

    async def _file(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        for file_id, data in self.files.items():
            if self._file_path(file_id) == path:
                return web.Response(body=data)
        return web.Response(status=404)

    async def _record(self, call: Call) -> None:
        if not self.record:
            return
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    def _first_from(self, update_id: int) -> int:
        """The index in `updates` of the first update whose id is `update_id` or more."""
        return bisect.bisect_left(self.updates, update_id, key=lambda u: u["update_id"])

    async def _get_updates(self, params: dict[str, Any]) -> web.Response:
        offset = int(params.get("offset") or 0)
        if offset > self._offset:  # the updates below `offset` are confirmed
            first = self._first_from(offset)
            self.confirmed += first - self._first_from(self._offset)
            self._offset = offset
            if not self.record:
                del self.updates[:first]
        timeout = min(float(params.get("timeout") or 0), self.long_poll)
        if self._first_from(offset) == len(self.updates) and timeout > 0:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter, timeout)
        first = self._first_from(offset)
        limit = int(params.get("limit") or 100)
        result = self.updates[first:first + limit]
        now = time.perf_counter()
        for update in result:
            self.handed.setdefault(update["update_id"], now)
        return web.json_response({"ok": True, "result": result})

    def _wake(self) -> None:
        """Answer every `getUpdates` waiting for an update."""
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # ------------------------------------------------------------------ faults
    def fail(self, method: str, status: int, description: str, *, times: int = 1,
             retry_after: int | None = None,
             match: Callable[[dict[str, Any]], bool] = lambda p: True) -> None:
        """The next `times` calls of `method` (matching `match`) fail like Telegram would."""
        self.failures.append(Failure(method, status, description, match, times, retry_after))

    def _failure(self, method: str, params: dict[str, Any]) -> Failure | None:
        for failure in self.failures:
            if failure.method == method and failure.times > 0 and failure.match(params):
                failure.times -= 1
                return failure
        return None

    def delete_topic(self, thread: int, chat: int = STAFF_CHAT) -> None:
        """A counsellor deletes a topic by accident."""
        self.topics_of(chat).pop(thread, None)

    def add_group(self, chat: int) -> None:
        """Another staff forum, numbering its topics from 50 like the first."""
        self.staff_chats.append(chat)
        self.group_topics[chat] = {}
        self._group_threads[chat] = itertools.count(50)

    def topics_of(self, chat: int) -> dict[int, str]:
        """A staff group's topics: thread -> name."""
        return self.group_topics.setdefault(chat, {})

    def _staff_chat(self, chat: int) -> dict[str, Any]:
        return {"id": chat, "type": "supergroup", "title": f"Desk {chat}",
                "is_forum": chat not in self.non_forums}

    # ------------------------------------------------------------------ waiting for the bot
    def _find(self, methods: tuple[str, ...], match: dict[str, Any],
              where: Callable[[Call], bool] | None) -> int | None:
        for index, call in enumerate(self.calls):
            if index in self._consumed or call.method not in methods or call.status != 200:
                continue
            if any(str(call.get(k)) != str(v) for k, v in match.items()):
                continue
            if where is None or where(call):
                return index
        return None

    async def next_call(self, method: str | tuple[str, ...], *, wait: float = 15.0,
                        where: Callable[[Call], bool] | None = None, **match: Any) -> Call:
        """The first successful call of `method` matching, not returned before; waits for it."""
        methods = (method,) if isinstance(method, str) else method
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(
                    lambda: self._find(methods, match, where) is not None), wait)
            except TimeoutError:
                seen = [(c.method, c.params.get("chat_id"), c.text[:60]) for c in self.calls]
                raise AssertionError(
                    f"no {method} {match} within {wait}s; calls: {seen}") from None
            index = self._find(methods, match, where)
            assert index is not None
            self._consumed.add(index)
            return self.calls[index]

    async def text_to(self, chat_id: int, contains: str, *, wait: float = 15.0,
                      thread: int | None = None) -> Call:
        """The next message (text, photo or document) to a chat containing `contains`."""
        def where(call: Call) -> bool:
            if thread is not None and call.thread != thread:
                return False
            return contains.casefold() in call.text.casefold()

        return await self.next_call(("sendMessage", "sendPhoto", "sendDocument"),
                                    wait=wait, where=where, chat_id=chat_id)

    def sent_to(self, chat_id: int) -> list[Call]:
        return [c for c in self.calls if c.chat_id == chat_id and c.status == 200
                and c.method in ("sendMessage", "sendPhoto", "sendDocument", "copyMessage")]

    def calls_of(self, method: str, **match: Any) -> list[Call]:
        return [c for c in self.calls if c.method == method
                and all(str(c.get(k)) == str(v) for k, v in match.items())]

    # ------------------------------------------------------------------ the people
    def _push(self, update: dict[str, Any]) -> dict[str, Any]:
        update["update_id"] = next(self._update_ids)
        self.updates.append(update)
        self.pushed += 1
        return update

    async def push(self, *updates: dict[str, Any]) -> None:
        """Queue updates for getUpdates, all in one batch."""
        for update in updates:
            self._push(update)
        self._wake()

    def offer(self, update: dict[str, Any]) -> float:
        """Make one update available to getUpdates now (from synchronous code); returns that
        moment (`time.perf_counter`). Its id is in `update["update_id"]`."""
        self._push(update)
        at = time.perf_counter()
        self._wake()
        return at

    def user(self, user_id: int, lang: str = "ru", name: str = "Маша") -> dict[str, Any]:
        return {"id": user_id, "is_bot": False, "first_name": name,
                "username": f"user{user_id}", "language_code": lang}

    def private_message(self, user_id: int, lang: str = "ru", **content: Any) -> dict[str, Any]:
        message_id = next(self._message_ids)
        message = {"message_id": message_id, "date": int(time.time()),
                   "chat": {"id": user_id, "type": "private", "first_name": "Маша"},
                   "from": self.user(user_id, lang), **content}
        return {"message": message}

    @staticmethod
    def _command_entity(message: dict[str, Any]) -> None:
        """A text starting with a bot command carries its entity, as Telegram sends it."""
        text = message.get("text")
        if isinstance(text, str) and text.startswith("/") and "entities" not in message:
            command = text.split()[0]
            message["entities"] = [{"type": "bot_command", "offset": 0,
                                    "length": len(command)}]

    def staff_message(self, user_id: int, thread: int | None = None, *, edited: bool = False,
                      message_id: int | None = None, chat: int = STAFF_CHAT,
                      **content: Any) -> dict[str, Any]:
        message = {"message_id": message_id or next(self._message_ids),
                   "date": int(time.time()),
                   "chat": self._staff_chat(chat),
                   "from": self.user(user_id, "ru", name=f"Staff{user_id}"), **content}
        if thread is not None:
            message["message_thread_id"] = thread
            message["is_topic_message"] = True
        if edited:
            message["edit_date"] = int(time.time())
        self._command_entity(message)
        return {"edited_message" if edited else "message": message}

    def press(self, user_id: int, data: str, *, chat_id: int | None = None,
              message_id: int = 1, thread: int | None = None, lang: str = "ru") -> dict[str, Any]:
        chat = chat_id if chat_id is not None else user_id
        message: dict[str, Any] = {"message_id": message_id, "date": int(time.time()),
                                   "chat": {"id": chat, "type": "private"},
                                   "from": {"id": BOT_ID, "is_bot": True, "first_name": "Bot"},
                                   "text": "…"}
        if chat in self.staff_chats:
            message["chat"] = self._staff_chat(chat)
        if thread is not None:
            message["message_thread_id"] = thread
            message["is_topic_message"] = True
        return {"callback_query": {"id": str(next(self._update_ids)),
                                   "from": self.user(user_id, lang),
                                   "chat_instance": "ci", "message": message, "data": data}}

    def add_file(self, data: bytes) -> tuple[str, str]:
        """A file on Telegram's servers: (file_id, file_unique_id)."""
        n = next(self._file_ids)
        file_id = f"FILE{n:04d}"
        self.files[file_id] = data
        return file_id, f"U{n:04d}"

    async def child_says(self, user_id: int, text: str, lang: str = "ru") -> None:
        await self.push(self.private_message(user_id, lang, text=text))

    async def child_edits(self, user_id: int, text: str, lang: str = "ru") -> None:
        """The child edits a message they sent: Telegram sends an ``edited_message``."""
        update = self.private_message(user_id, lang, text=text)
        update["message"]["edit_date"] = int(time.time())
        await self.push({"edited_message": update["message"]})

    async def child_presses(self, user_id: int, data: str, lang: str = "ru") -> str:
        """Press a button; returns the callback query id (to find its answerCallbackQuery)."""
        update = self.press(user_id, data, lang=lang)
        await self.push(update)
        return str(update["callback_query"]["id"])

    async def child_sends_photo(self, user_id: int, data: bytes, caption: str | None = None,
                                lang: str = "ru") -> str:
        file_id, unique = self.add_file(data)
        sizes = [{"file_id": f"{file_id}-thumb", "file_unique_id": f"{unique}t", "width": 90,
                  "height": 90, "file_size": 100},
                 {"file_id": file_id, "file_unique_id": unique, "width": 1280, "height": 720,
                  "file_size": len(data)}]
        content: dict[str, Any] = {"photo": sizes}
        if caption is not None:
            content["caption"] = caption
        await self.push(self.private_message(user_id, lang, **content))
        return file_id

    async def child_sends(self, user_id: int, content: dict[str, Any], lang: str = "ru") -> None:
        """Any message content: {"sticker": {...}}, {"location": {...}}..."""
        await self.push(self.private_message(user_id, lang, **content))

    async def staff_says(self, user_id: int, text: str, thread: int | None = None, *,
                         chat: int = STAFF_CHAT) -> int:
        update = self.staff_message(user_id, thread, chat=chat, text=text)
        await self.push(update)
        return int(update["message"]["message_id"])

    async def staff_presses(self, user_id: int, data: str, *, thread: int | None = None,
                            message_id: int = 1, chat: int = STAFF_CHAT) -> str:
        """A staff member presses a button; returns the callback query id."""
        update = self.press(user_id, data, chat_id=chat, thread=thread,
                            message_id=message_id)
        await self.push(update)
        return str(update["callback_query"]["id"])

    async def answer_to(self, query_id: str, wait: float = 15.0) -> Call:
        """The bot's answerCallbackQuery for a press."""
        return await self.next_call("answerCallbackQuery", callback_query_id=query_id,
                                    wait=wait)

    # ------------------------------------------------------------------ Bot API methods
    def _message(self, params: dict[str, Any], **content: Any) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        thread = params.get("message_thread_id")
        staff = chat_id in self.staff_chats
        if staff and thread is not None and int(thread) not in self.topics_of(chat_id):
            raise _BadRequest("message thread not found")
        chat: dict[str, Any] = {"id": chat_id, "type": "private"}
        if staff:
            chat = self._staff_chat(chat_id)
        message: dict[str, Any] = {
            "message_id": next(self._message_ids), "date": int(time.time()), "chat": chat,
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "Helpline"}, **content,
        }
        if thread is not None:
            message["message_thread_id"] = int(thread)
            message["is_topic_message"] = True
        if "reply_markup" in params:
            message["reply_markup"] = params["reply_markup"]
        if self.record or staff:
            self.messages[(chat_id, message["message_id"])] = message
        return message

    def _m_getMe(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"id": BOT_ID, "is_bot": True, "first_name": "Helpline",
                "username": "helpline_test_bot"}

    def _m_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        text = str(params["text"])
        if len(text) > 4096:
            raise _BadRequest("message is too long")
        return self._message(params, text=text)

    def _uploaded(self, params: dict[str, Any], field: str) -> str:
        """A file sent by id, or uploaded (`attach://name`: kept, given a new file id)."""
        ref = params[field]
        if isinstance(ref, str) and ref.startswith("attach://"):
            data = params[ref.removeprefix("attach://")]
            self.uploads.append((int(params["chat_id"]), params.get("message_thread_id"), data))
            return self.add_file(data)[0]
        if isinstance(ref, bytes):
            self.uploads.append((int(params["chat_id"]), params.get("message_thread_id"), ref))
            return self.add_file(ref)[0]
        return str(ref)

    def _m_sendPhoto(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id = self._uploaded(params, "photo")
        content: dict[str, Any] = {"photo": [{"file_id": file_id, "file_unique_id": "u" + file_id,
                                              "width": 1, "height": 1}]}
        if params.get("caption"):
            content["caption"] = params["caption"]
        return self._message(params, **content)

    def _m_sendDocument(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id = self._uploaded(params, "document")
        content: dict[str, Any] = {"document": {"file_id": file_id,
                                                "file_unique_id": "u" + file_id}}
        if params.get("caption"):
            content["caption"] = params["caption"]
        return self._message(params, **content)

    def _m_copyMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"message_id": self._message(params)["message_id"]}

    def _edited(self, params: dict[str, Any], **content: Any) -> dict[str, Any] | bool:
        key = (int(params["chat_id"]), int(params["message_id"]))
        message = self.messages.get(key)
        if message is None:
            raise _BadRequest("message to edit not found")
        message.update(content)
        if "reply_markup" in params:
            message["reply_markup"] = params["reply_markup"]
        else:
            message.pop("reply_markup", None)
        return message

    def _m_editMessageText(self, params: dict[str, Any]) -> dict[str, Any] | bool:
        return self._edited(params, text=params["text"])

    def _m_editMessageCaption(self, params: dict[str, Any]) -> dict[str, Any] | bool:
        return self._edited(params, caption=params.get("caption"))

    def _m_editMessageReplyMarkup(self, params: dict[str, Any]) -> dict[str, Any] | bool:
        return self._edited(params)

    def _m_answerCallbackQuery(self, params: dict[str, Any]) -> bool:
        return True

    def _m_createForumTopic(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = int(params["chat_id"])
        if not self.staff_is_forum or chat in self.non_forums:
            raise _BadRequest("the chat is not a forum")
        thread = next(self._group_threads.setdefault(chat, itertools.count(50)))
        self.topics_of(chat)[thread] = str(params["name"])
        return {"message_thread_id": thread, "name": params["name"], "icon_color": 7322096}

    def _m_editForumTopic(self, params: dict[str, Any]) -> bool:
        thread, topics = int(params["message_thread_id"]), self.topics_of(int(params["chat_id"]))
        if thread not in topics:
            raise _BadRequest("message thread not found")
        if topics[thread] == params.get("name"):
            raise _BadRequest("TOPIC_NOT_MODIFIED")
        topics[thread] = str(params.get("name"))
        return True

    def _m_deleteForumTopic(self, params: dict[str, Any]) -> bool:
        self.delete_topic(int(params["message_thread_id"]), int(params["chat_id"]))
        return True

    def _m_closeForumTopic(self, params: dict[str, Any]) -> bool:
        self.closed_topics.add(int(params["message_thread_id"]))
        return True

    def _m_getFile(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id = str(params["file_id"])
        if file_id not in self.files:
            raise _BadRequest("wrong file_id or the file is temporarily unavailable")
        return {"file_id": file_id, "file_unique_id": "u" + file_id,
                "file_size": len(self.files[file_id]), "file_path": self._file_path(file_id)}

    @staticmethod
    def _file_path(file_id: str) -> str:
        return f"photos/{file_id}.jpg"

    def _m_setMyCommands(self, params: dict[str, Any]) -> bool:
        return True

    def _m_deleteWebhook(self, params: dict[str, Any]) -> bool:
        return True

    def _m_setWebhook(self, params: dict[str, Any]) -> bool:
        return True

    def _m_getChat(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = int(params["chat_id"])
        return {"id": chat, "type": "supergroup", "title": "Desk",
                "is_forum": self.staff_is_forum and chat not in self.non_forums,
                "accent_color_id": 0, "max_reaction_count": 11,
                "accepted_gift_types": {"unlimited_gifts": False, "limited_gifts": False,
                                        "unique_gifts": False, "premium_subscription": False,
                                        "gifts_from_channels": False}}

    def _m_getChatMember(self, params: dict[str, Any]) -> dict[str, Any]:
        user = {"id": int(params["user_id"]), "is_bot": True, "first_name": "Helpline"}
        if self.bot_status != "administrator":
            return {"status": "member", "user": user}
        rights = {name: True for name in (
            "can_be_edited", "can_manage_chat", "can_delete_messages",
            "can_manage_video_chats", "can_restrict_members", "can_promote_members",
            "can_change_info", "can_invite_users", "can_post_stories", "can_edit_stories",
            "can_delete_stories", "can_pin_messages", "can_send_welcome_messages")}
        return {"status": "administrator", "user": user, "is_anonymous": False, **rights,
                "can_manage_topics": self.bot_can_manage_topics}

    def _m_pinChatMessage(self, params: dict[str, Any]) -> bool:
        self.pinned.add(int(params["message_id"]))
        return True

    def _m_unpinChatMessage(self, params: dict[str, Any]) -> bool:
        self.pinned.discard(int(params.get("message_id") or 0))
        return True


class _BadRequest(Exception):
    pass
