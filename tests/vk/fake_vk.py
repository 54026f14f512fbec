"""A fake VK API on 127.0.0.1 for the real vk-api client: the method endpoint (`/method/...`),
the Bots Long Poll endpoint (`/lp`) with VK's `ts` and `failed` semantics, and file downloads.

It runs `http.server` in a thread, so the client under test talks real HTTP. What it checks is
what VK checks (token, group, `random_id` dedupe, text and keyboard limits); what it records is
what a test asserts on. Failures are scripted: `fail("messages.send", error=9)`,
`fail_poll(failed=2)`, `fail_poll(drop=True)`.

VK's rules it follows: https://dev.vk.com/ru/api/bots-long-poll/getting-started (ts, failed 1/2/3),
https://dev.vk.com/ru/method/messages.send (random_id), .../bots/development/keyboard (limits).
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

TOKEN = "vk-test-token"
GROUP_ID = 424242

ALL_ACTIONS = [
    "text",
    "vkpay",
    "open_app",
    "location",
    "open_link",
    "callback",
    "intent_subscribe",
    "intent_unsubscribe",
]
MODERN_CLIENT = {
    "button_actions": ALL_ACTIONS,
    "keyboard": True,
    "inline_keyboard": True,
    "carousel": True,
    "lang_id": 0,
}
KEYBOARD_ONLY_CLIENT = {
    "button_actions": ["text"],
    "keyboard": True,
    "inline_keyboard": False,
    "lang_id": 0,
}
NO_KEYBOARD_CLIENT = {"button_actions": [], "keyboard": False, "inline_keyboard": False}


@dataclass
class Sent:
    """A message VK accepted and showed the user."""

    peer_id: int
    random_id: int
    text: str
    keyboard: dict[str, Any] | None
    message_id: int

    @property
    def buttons(self) -> list[dict[str, Any]]:
        if not self.keyboard:
            return []
        return [b["action"] for row in self.keyboard["buttons"] for b in row]

    @property
    def labels(self) -> list[str]:
        return [str(b["label"]) for b in self.buttons]


@dataclass
class Failure:
    error: int | None = None
    http: int | None = None
    deliver_first: bool = False  # do the work, then fail the answer (a lost response)


@dataclass
class FakeVkState:
    token: str = TOKEN
    group_id: int = GROUP_ID
    events: list[dict[str, Any]] = field(default_factory=list)
    key_number: int = 1
    sent: list[Sent] = field(default_factory=list)
    send_calls: list[dict[str, str]] = field(default_factory=list)
    answers: list[dict[str, str]] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    polls: list[dict[str, str]] = field(default_factory=list)
    # (ts asked, what was answered): "events:N", "failed:N", "drop", "http:N"
    poll_answers: list[tuple[str, str]] = field(default_factory=list)
    forbidden: set[int] = field(default_factory=set)
    failures: dict[str, deque[Failure]] = field(default_factory=dict)
    poll_failures: deque[dict[str, Any]] = field(default_factory=deque)
    files: dict[str, bytes] = field(default_factory=dict)
    random_ids: dict[tuple[int, int], int] = field(default_factory=dict)
    file_requests: list[str] = field(default_factory=list)


def _keyboard_problem(keyboard: dict[str, Any]) -> str | None:
    rows = keyboard.get("buttons") or []
    inline = bool(keyboard.get("inline"))
    max_rows, max_buttons = (6, 10) if inline else (10, 40)
    count = sum(len(r) for r in rows)
    if len(rows) > max_rows or count > max_buttons or any(len(r) > 5 for r in rows):
        return "too many buttons"
    for row in rows:
        for button in row:
            action = button.get("action") or {}
            if action.get("type") not in ("text", "callback"):
                return "unexpected button type"
            if len(str(action.get("label") or "").encode("utf-16-le")) // 2 > 40:
                return "label too long"
            if len(str(action.get("payload") or "")) > 255:
                return "payload too long"
    return None


class FakeVk:
    """The server and its state. `base_url` is what VK_API_URL should be set to."""

    def __init__(self) -> None:
        self.state = FakeVkState()
        self.cond = threading.Condition()
        self._ids = itertools.count(1)
        self._event_ids = itertools.count(1)
        self._wake = 0
        self._closing = False
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                fake._get(self)

            def do_POST(self) -> None:
                fake._post(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.base}/method"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakeVk:
        self._thread.start()
        return self

    def close(self) -> None:
        with self.cond:
            self._closing = True
            self.cond.notify_all()
        self.server.shutdown()
        self.server.server_close()

    def wake(self) -> None:
        """Answer every waiting long poll now (with whatever there is)."""
        with self.cond:
            self._wake += 1
            self.cond.notify_all()

    # ------------------------------------------------------------------ scripting
    def fail(
        self,
        method: str,
        *,
        error: int | None = None,
        http: int | None = None,
        deliver_first: bool = False,
        times: int = 1,
        after: int = 0,
    ) -> None:
        """The next `times` calls of `method`, after `after` good ones, fail."""
        with self.cond:
            queue = self.state.failures.setdefault(method, deque())
            for _ in range(after):
                queue.append(Failure())
            for _ in range(times):
                queue.append(Failure(error, http, deliver_first))

    def fail_poll(
        self,
        *events: dict[str, Any],
        failed: int | None = None,
        drop: bool = False,
        http: int | None = None,
    ) -> None:
        """The next long poll answer is `{"failed": n}` (or a dropped connection, or an HTTP
        error page), with `events` already waiting behind it."""
        with self.cond:
            self.state.poll_failures.append({"failed": failed, "drop": drop, "http": http})
            self.state.events.extend(events)
            self.cond.notify_all()

    def forbid(self, peer_id: int) -> None:
        with self.cond:
            self.state.forbidden.add(peer_id)

    def allow(self, peer_id: int) -> None:
        with self.cond:
            self.state.forbidden.discard(peer_id)

    def add_file(self, name: str, data: bytes) -> str:
        with self.cond:
            self.state.files[name] = data
        return f"{self.base}/files/{name}"

    # ------------------------------------------------------------------ events
    def push(self, *events: dict[str, Any]) -> None:
        with self.cond:
            self.state.events.extend(events)
            self.cond.notify_all()

    def message_new(
        self,
        peer_id: int,
        text: str = "",
        *,
        payload: str | None = None,
        attachments: list[dict[str, Any]] | None = None,
        client_info: dict[str, Any] | None = MODERN_CLIENT,
        event_id: str | None = "auto",
        **extra: Any,
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "date": 1_700_000_000,
            "from_id": peer_id,
            "id": next(self._ids),
            "out": 0,
            "peer_id": peer_id,
            "text": text,
            "conversation_message_id": next(self._ids),
            "fwd_messages": [],
            "important": False,
            "is_hidden": False,
            "attachments": attachments or [],
            **extra,
        }
        if payload is not None:
            message["payload"] = payload
        obj: dict[str, Any] = {"message": message}
        if client_info is not None:
            obj["client_info"] = client_info
        return self._event("message_new", obj, event_id)

    def message_event(
        self, peer_id: int, payload: Any, *, event_id: str | None = "auto"
    ) -> dict[str, Any]:
        obj = {
            "user_id": peer_id,
            "peer_id": peer_id,
            "event_id": f"btn{next(self._event_ids):08x}",
            "payload": payload,
            "conversation_message_id": next(self._ids),
        }
        return self._event("message_event", obj, event_id)

    def _event(self, kind: str, obj: dict[str, Any], event_id: str | None) -> dict[str, Any]:
        event: dict[str, Any] = {
            "group_id": self.state.group_id,
            "type": kind,
            "v": "5.199",
            "object": obj,
        }
        if event_id == "auto":
            event["event_id"] = f"{next(self._event_ids):040x}"
        elif event_id is not None:
            event["event_id"] = event_id
        return event

    def photo(self, name: str, data: bytes) -> dict[str, Any]:
        """A photo attachment whose largest size is the file `name`."""
        url = self.add_file(name, data)
        small = self.add_file(f"small-{name}", b"small")
        return {
            "type": "photo",
            "photo": {
                "id": next(self._ids),
                "owner_id": 1,
                "sizes": [
                    {"type": "s", "width": 75, "height": 50, "url": small},
                    {"type": "x", "width": 604, "height": 403, "url": url},
                    {"type": "m", "width": 130, "height": 87, "url": small},
                ],
            },
        }

    def doc(self, name: str, data: bytes, title: str = "chat.pdf") -> dict[str, Any]:
        url = self.add_file(name, data)
        return {
            "type": "doc",
            "doc": {
                "id": next(self._ids),
                "owner_id": 1,
                "title": title,
                "size": len(data),
                "ext": title.rsplit(".", 1)[-1],
                "url": url,
                "type": 1,
            },
        }

    # ------------------------------------------------------------------ reading
    def sent_to(self, peer_id: int) -> list[Sent]:
        with self.cond:
            return [m for m in self.state.sent if m.peer_id == peer_id]

    @property
    def pushed(self) -> int:
        with self.cond:
            return len(self.state.events)

    # ------------------------------------------------------------------ HTTP
    def _reply(
        self,
        handler: BaseHTTPRequestHandler,
        body: Any,
        status: int = 200,
        content_type: str = "application/json",
    ) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _get(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlparse(handler.path)
        if url.path == "/lp":
            self._poll(handler, {k: v[0] for k, v in parse_qs(url.query).items()})
        elif url.path.startswith("/files/"):
            name = url.path.removeprefix("/files/")
            with self.cond:
                self.state.file_requests.append(name)
                data = self.state.files.get(name)
            if data is None:
                self._reply(handler, b"not found", 404, "text/plain")
            else:
                self._reply(handler, data, 200, "image/jpeg")
        else:
            self._reply(handler, b"not found", 404, "text/plain")

    def _poll(self, handler: BaseHTTPRequestHandler, query: dict[str, str]) -> None:
        with self.cond:
            self.state.polls.append(query)
            wake = self._wake
            if query.get("key") != f"key-{self.state.key_number}":
                answer: dict[str, Any] = {"failed": 2}
            else:
                try:
                    ts = int(query.get("ts", ""))
                except ValueError:
                    ts = -1
                current = len(self.state.events) + 1
                if not 1 <= ts <= current:
                    answer = {"failed": 1, "ts": str(current)}
                else:
                    wait = float(query.get("wait", "25"))
                    self.cond.wait_for(
                        lambda: (
                            self._closing
                            or self._wake != wake
                            or len(self.state.events) >= ts
                            or bool(self.state.poll_failures)
                        ),
                        timeout=wait,
                    )
                    failure = self._poll_failure(ts)
                    answer = (
                        failure
                        if failure is not None
                        else {
                            "ts": str(len(self.state.events) + 1),
                            "updates": self.state.events[ts - 1 :],
                        }
                    )
            self.state.poll_answers.append((query.get("ts", ""), self._summary(answer)))
        if answer.get("drop"):
            handler.close_connection = True  # no answer at all: the client sees a reset
            return
        if answer.get("http"):
            self._reply(handler, b"<html>502 Bad Gateway</html>", answer["http"], "text/html")
            return
        self._reply(handler, answer)

    @staticmethod
    def _summary(answer: dict[str, Any]) -> str:
        if answer.get("drop"):
            return "drop"
        if answer.get("http"):
            return f"http:{answer['http']}"
        if "failed" in answer:
            return f"failed:{answer['failed']}"
        return f"events:{len(answer['updates'])}"

    def _poll_failure(self, ts: int) -> dict[str, Any] | None:
        if not self.state.poll_failures:
            return None
        failure = self.state.poll_failures.popleft()
        if failure["drop"] or failure["http"]:
            return {"drop": failure["drop"], "http": failure["http"]}
        code = failure["failed"]
        if code == 1:
            # History outdated: go on from the ts we give (the one asked for, nothing is lost).
            return {"failed": 1, "ts": str(ts)}
        self.state.key_number += 1  # 2 and 3: the key is no longer valid
        return {"failed": code}

    def _post(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(handler.rfile.read(length).decode()).items()}
        method = urlparse(handler.path).path.removeprefix("/method/")
        with self.cond:
            self.state.calls.append(method)
            if method == "messages.send":
                self.state.send_calls.append(form)  # every try, failed or not
            failure = None
            queue = self.state.failures.get(method)
            if queue:
                failure = queue.popleft()
                if not (failure.error or failure.http):
                    failure = None  # a good call before the scripted failures
            if form.get("access_token") != self.state.token:
                body: Any = self._error(5, "User authorization failed: invalid access_token")
            elif not form.get("v"):
                body = self._error(8, "Invalid request: v is required")
            elif failure is not None and not failure.deliver_first:
                body = self._error(failure.error or 10, "scripted") if failure.error else None
            else:
                body = self._method(method, form)
        if failure is not None and failure.http:
            self._reply(handler, b"<html>bad gateway</html>", failure.http, "text/html")
        elif failure is not None and failure.deliver_first and failure.error:
            self._reply(handler, self._error(failure.error, "scripted"))
        else:
            self._reply(handler, body)

    @staticmethod
    def _error(code: int, message: str) -> dict[str, Any]:
        return {"error": {"error_code": code, "error_msg": message, "request_params": []}}

    def _method(self, method: str, form: dict[str, str]) -> dict[str, Any]:
        state = self.state
        if method == "groups.getLongPollServer":
            if form.get("group_id") != str(state.group_id):
                return self._error(100, "One of the parameters specified was missing or invalid")
            return {
                "response": {
                    "key": f"key-{state.key_number}",
                    "server": f"{self.base}/lp",
                    "ts": str(len(state.events) + 1),
                }
            }
        if method == "messages.send":
            peer = int(form["peer_id"])
            rid = int(form["random_id"])
            if peer in state.forbidden:
                return self._error(901, "Can't send messages for users without permission")
            text = form.get("message", "")
            if len(text) > 4096:
                return self._error(914, "Message is too long")
            keyboard = json.loads(form["keyboard"]) if form.get("keyboard") else None
            if keyboard is not None and _keyboard_problem(keyboard):
                return self._error(911, "Keyboard format is invalid")
            if rid and (peer, rid) in state.random_ids:
                return {"response": state.random_ids[(peer, rid)]}
            message_id = next(self._ids)
            if rid:
                state.random_ids[(peer, rid)] = message_id
            state.sent.append(Sent(peer, rid, text, keyboard, message_id))
            return {"response": message_id}
        if method == "messages.sendMessageEventAnswer":
            state.answers.append(form)
            return {"response": 1}
        return self._error(3, "Unknown method passed")
