"""What every handler of the web console reaches through `request.app`: the help line's `App`
and the console's own parts (texts, templates, the live queue feed). No globals."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import jinja2
from aiohttp import web

from bot.app import App
from bot.settings import Settings
from bot.web.live import QueueFeed
from dialogs.catalogue import LOCALES, Catalogue
from storage.models import Counsellor

HERE = Path(__file__).parent
TEXTS = HERE / "texts.yaml"
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


@dataclass
class Staff:
    """The signed-in counsellor of one request."""

    counsellor: Counsellor
    session_hash: str
    csrf: str

    @property
    def is_supervisor(self) -> bool:
        return self.counsellor.role == "supervisor"


class Texts:
    """The console's catalogue bound to one locale, for code and templates alike."""

    def __init__(self, catalogue: Catalogue, locale: str) -> None:
        self.catalogue = catalogue
        self.locale = locale if locale in LOCALES else "en"

    def __call__(self, key: str, **values: object) -> str:
        text = self.catalogue.t(key, self.locale)
        return text.format(**values) if values else text

    def has(self, key: str) -> bool:
        return self.catalogue.has(key)


@dataclass
class Console:
    """The console's parts, built once per web application."""

    app: App
    texts: Catalogue
    templates: jinja2.Environment
    feed: QueueFeed
    sound: bytes
    # How soon a critical case should have its first answer (the wallboard's alarm).
    critical_target: timedelta = timedelta(minutes=5)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def settings(self) -> Settings:
        return self.app.settings


CONSOLE: web.AppKey[Console] = web.AppKey("console", Console)
STAFF: web.RequestKey[Staff] = web.RequestKey("staff", Staff)
LOCALE: web.RequestKey[str] = web.RequestKey("locale", str)


def console_of(request: web.Request) -> Console:
    return request.app[CONSOLE]


def staff_of(request: web.Request) -> Staff:
    """The signed-in counsellor; the auth middleware guarantees one on every protected route."""
    staff: Staff | None = request.get(STAFF)
    if staff is None:
        raise web.HTTPUnauthorized()
    return staff


def texts_of(request: web.Request) -> Texts:
    console = console_of(request)
    return Texts(console.texts, request.get(LOCALE) or console.settings.default_locale)


def template_env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html"], default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
