"""All settings, read once from environment variables (and an optional `.env`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from dialogs.retention import JOURNAL_DAYS, OUTBOX_DAYS


class Settings(BaseSettings):
    """Every variable is documented in the README. Malformed values stop start-up."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///var/helpline.db"
    default_locale: str = Field("ru", pattern="^(ru|en)$")
    # Whose emergency contacts a child in danger sees (dialogs/data/contacts.yaml), whatever
    # the interface language.
    helpline_region: str = "ru"
    evidence_dir: Path = Path("var/evidence")
    evidence_max_bytes: int = Field(20 * 1024 * 1024, gt=0)
    max_text_chars: int = Field(4000, gt=0)
    silence_hours: float = Field(6.0, gt=0)
    minutes_per_case: int = Field(10, gt=0)
    # Retention (dialogs/retention.py): transcripts, evidence, case answers and audit free
    # text `retention_days` after their case closes; the handled inbound journal and the sent
    # outbox (they hold names, platform ids and texts) sooner, never later.
    retention_days: int = Field(30, gt=0)
    journal_retention_days: int = Field(JOURNAL_DAYS, gt=0)
    outbox_retention_days: int = Field(OUTBOX_DAYS, gt=0)
    encryption_keys: SecretStr | None = None
    id_hash_key: SecretStr | None = None
    keys_file: Path = Path("var/keys.json")
    log_level: str = Field("INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    log_json: bool = False

    telegram_bot_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org"
    # TELEGRAM_STAFF_CHAT_ID: one staff forum, or several as a comma-separated list (each group
    # takes 20 posts a minute: a busy line spreads its cases). Cases made before a case row kept
    # its group live in the first one: add new groups at the end.
    telegram_staff_chat_ids: Annotated[tuple[int, ...], NoDecode] = Field(
        (), validation_alias="telegram_staff_chat_id")
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None
    webhook_host: str = "0.0.0.0"
    webhook_port: int = Field(8080, gt=0, lt=65536)

    vk_token: SecretStr | None = None
    vk_group_id: int | None = None
    vk_api_url: str = "https://api.vk.com/method"
    vk_api_version: str = "5.199"
    # The per-chat mailboxes (bot/mailbox.py): chats worked on at once, and updates accepted and
    # waiting in this process before the platform is asked to hold the rest (webhook: 429;
    # polling: not fetched). Updates held at the platform are out of the danger lane's reach,
    # so the backlog is generous: the journal, not memory, holds what waits.
    mailbox_chats: int = Field(32, gt=0)
    mailbox_backlog: int = Field(2000, gt=0)
    # SEND_PACING=off lifts Telegram's and VK's published send limits (bot/pacing.py) so a
    # benchmark measures the bot as shipped against a fake API server. Refused while either API
    # URL is the platform's real one: there the limits are the platform's rules, not ours.
    send_pacing: bool = True

    # The counsellors' web console (bot/web): served by `helpline run` when enabled, or alone by
    # `helpline web`. Behind a TLS-terminating proxy in production; cookies are Secure by default.
    web_enabled: bool = False
    web_host: str = "127.0.0.1"
    web_port: int = Field(8090, gt=0, lt=65536)
    web_session_minutes: int = Field(30, gt=0)
    web_session_max_hours: int = Field(12, gt=0)
    web_cookie_secure: bool = True
    web_lockout_attempts: int = Field(5, gt=0)
    web_lockout_minutes: int = Field(15, gt=0)
    web_require_totp: bool = False
    # The wallboard's alarm: a critical case should have a counsellor's first answer within this.
    web_critical_response_minutes: int = Field(5, gt=0)

    # Desk operations: opening hours (a YAML file; default dialogs/data/hours.yaml), how many
    # cases a counsellor holds at once, and the minute sweep's intervals.
    hours_file: Path | None = None
    counsellor_capacity: int = Field(3, gt=0)
    reannounce_minutes: int = Field(10, gt=0)
    queue_update_minutes: int = Field(15, gt=0)
    wait_estimate_days: int = Field(7, gt=0)

    @field_validator(
        "telegram_bot_token",
        "vk_token",
        "telegram_webhook_secret",
        "encryption_keys",
        "id_hash_key",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("helpline_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        from dialogs.contacts import regions

        if value not in regions():
            raise ValueError(f"no emergency contacts for region {value!r}; known: {regions()}")
        return value

    @field_validator("vk_group_id", mode="before")
    @classmethod
    def _empty_int_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("telegram_staff_chat_ids", mode="before")
    @classmethod
    def _staff_chat_list(cls, value: object) -> tuple[int, ...]:
        return parse_chat_ids(value)

    @property
    def telegram_staff_chat_id(self) -> int | None:
        """The first staff group (None: no Telegram desk)."""
        return self.telegram_staff_chat_ids[0] if self.telegram_staff_chat_ids else None

    @field_validator("hours_file", mode="before")
    @classmethod
    def _hours_file_readable(cls, value: object) -> object:
        """An empty HOURS_FILE means the default; a given one must exist and parse."""
        if value in ("", None):
            return None
        from dialogs.hours import load_hours

        path = Path(str(value))
        if not path.is_file():
            raise ValueError(f"no such file: {path}")
        load_hours(path)  # a malformed file stops start-up here, naming the variable
        return path


    @model_validator(mode="after")
    def _pacing_only_on_fakes(self) -> Settings:
        if self.send_pacing:
            return self
        real = [url for url, token in ((self.telegram_api_url, self.telegram_bot_token),
                                       (self.vk_api_url, self.vk_token))
                if token is not None and _is_real_api(url)]
        if real:
            raise ValueError(
                "SEND_PACING=off is only for fake API servers (benchmarks, tests), and "
                f"{', '.join(real)} is the real platform: point TELEGRAM_API_URL / VK_API_URL "
                "at the fake server, or remove SEND_PACING")
        return self


def parse_chat_ids(value: object) -> tuple[int, ...]:
    """Chat ids from "-1001", "-1001,-1002", an int or a sequence; empty or None: none."""
    if value is None or value == "":
        return ()
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,)
    if isinstance(value, str):
        parts = [part.strip() for part in value.split(",")]
    elif isinstance(value, list | tuple):
        parts = [str(part).strip() for part in value]
    else:
        raise ValueError("expected a chat id or a comma-separated list of chat ids")
    if not all(_is_int(part) for part in parts):
        raise ValueError(
            f"expected a chat id or a comma-separated list of chat ids such as "
            f"-1001234567890,-1009876543210; got {value!r}")
    ids = tuple(int(part) for part in parts)
    if len(set(ids)) != len(ids):
        raise ValueError(f"a chat id is listed twice in {value!r}")
    return ids


def _is_int(text: str) -> bool:
    return text.removeprefix("-").isdigit()


def _is_real_api(url: str) -> bool:
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").lower()
    return any(host == real or host.endswith("." + real) for real in REAL_API_HOSTS)


REAL_API_HOSTS = ("telegram.org", "vk.com")


def load_settings() -> Settings:
    """Read settings; a bad value raises with the variable's name in the message."""
    return Settings()
