"""Encryption at rest and keyed hashing of platform ids.

* Platform user ids are stored only as keyed hashes (HMAC-SHA256 with `ID_HASH_KEY`): the
  database alone cannot tell who a child is.
* Delivery addresses, transcript text, case answers, notes, evidence references and queued
  outbound messages are encrypted with Fernet (AES-128-CBC + HMAC-SHA256) under
  `ENCRYPTION_KEYS`: a comma-separated list whose first key encrypts and all keys decrypt, so a
  key can be rotated (README: "Rotating the encryption key").

The cipher is configured once at start-up (`configure`); the column types below read it, since
SQLAlchemy type hooks have no other way to reach it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Text, TypeDecorator
from sqlalchemy.engine import Dialect


class CryptoError(RuntimeError):
    pass


class Cipher:
    def __init__(self, keys: list[str], id_key: str) -> None:
        if not keys:
            raise CryptoError("ENCRYPTION_KEYS is empty")
        self.key_strings = tuple(k.strip() for k in keys)
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in self.key_strings])
        except ValueError as exc:
            raise CryptoError(
                "ENCRYPTION_KEYS: each key must be 32 url-safe base64 bytes "
                "(make one with `helpline keys new`)"
            ) from exc
        if len(id_key) < 16:
            raise CryptoError("ID_HASH_KEY must be at least 16 characters")
        self._id_key = id_key.encode()

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise CryptoError(
                "cannot decrypt: the key that wrote this is not in ENCRYPTION_KEYS"
            ) from exc

    def rotate(self, token: str) -> str:
        """Re-encrypt a token under the first (newest) key."""
        return self._fernet.rotate(token.encode()).decode()

    def encrypt_bytes(self, data: bytes) -> bytes:
        return self._fernet.encrypt(data)

    def decrypt_bytes(self, data: bytes) -> bytes:
        try:
            return self._fernet.decrypt(data)
        except InvalidToken as exc:
            raise CryptoError("cannot decrypt file with the configured keys") from exc

    def hash_id(self, namespace: str, value: str) -> str:
        digest = hmac.new(self._id_key, f"{namespace}:{value}".encode(), hashlib.sha256)
        return digest.hexdigest()


_current: Cipher | None = None


def configure(cipher: Cipher) -> None:
    global _current
    _current = cipher


def current() -> Cipher:
    if _current is None:
        raise CryptoError("encryption is not configured (storage.crypto.configure)")
    return _current


def new_key() -> str:
    return Fernet.generate_key().decode()


def local_keys(path: Path) -> tuple[list[str], str]:
    """Keys for a machine with none configured (development, `make run`): made once, kept in a
    file only its owner can read. Production sets ENCRYPTION_KEYS and ID_HASH_KEY instead."""
    if path.exists():
        data = json.loads(path.read_text(encoding="utf-8"))
        return list(data["encryption_keys"]), str(data["id_hash_key"])
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "encryption_keys": [new_key()],
        "id_hash_key": base64.urlsafe_b64encode(os.urandom(32)).decode(),
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    return list(data["encryption_keys"]), str(data["id_hash_key"])


class EncryptedText(TypeDecorator[str]):
    """Text stored encrypted; reads back as the plain string."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else current().encrypt(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else current().decrypt(value)


class EncryptedJSON(TypeDecorator[Any]):
    """A JSON document stored encrypted. Reassign (do not mutate) to save a change."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return current().encrypt(json.dumps(value, ensure_ascii=False))

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else json.loads(current().decrypt(value))


_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_-]+=*")
_FERNET_VERSION = 0x80


def is_token(value: str) -> bool:
    """Is `value` shaped like a Fernet token (url-safe base64 opening with the version byte)?
    It says nothing about which key wrote it."""
    if not _TOKEN_CHARS.fullmatch(value):
        return False
    try:
        return base64.urlsafe_b64decode(value)[:1] == bytes([_FERNET_VERSION])
    except (binascii.Error, ValueError):
        return False


def legacy_json(value: str) -> Any:
    """A value written before its column was encrypted: plain JSON, never a token. Raises
    CryptoError for anything else, so a damaged token is never mistaken for data."""
    if is_token(value):
        raise CryptoError("a token is not legacy plain JSON")
    try:
        return json.loads(value)
    except ValueError as exc:
        raise CryptoError("a stored value is neither a token nor plain JSON") from exc


class LegacyPlain(dict[str, Any]):
    """A document read from a legacy plain-JSON value: unequal to everything, so the ORM writes
    it back (encrypted) on the next save even when its content did not change."""


class EncryptedJSONFromPlain(EncryptedJSON):
    """`EncryptedJSON` for a column that used to hold plain JSON (migrated in place, without
    keys): a value that is not a token and parses as a JSON object is legacy and reads back as
    `LegacyPlain`; tokens decrypt as usual, and every write is encrypted."""

    cache_ok = True

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        if value is None or is_token(value):
            return super().process_result_value(value, dialect)
        document = legacy_json(value)
        if not isinstance(document, dict):
            raise CryptoError("a legacy plain JSON value is not an object")
        return LegacyPlain(document)

    def compare_values(self, x: Any, y: Any) -> bool:
        if isinstance(x, LegacyPlain) or isinstance(y, LegacyPlain):
            return False
        return bool(x == y)
