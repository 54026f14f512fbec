"""The command-line side of the web console: `helpline web` and `helpline counsellor password`.

A password is typed twice at a terminal (never echoed) or read as the first line of standard
input (`printf '%s\\n' "$PW" | helpline counsellor password anna`); it never appears in the
arguments, where `ps` and the shell history would show it.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from typing import TextIO

from bot.settings import Settings


def read_password(stream: TextIO = sys.stdin) -> str | None:
    """The new password, or None (with a message) if the two typings differ."""
    if stream.isatty():
        first = getpass.getpass("new password: ")
        if getpass.getpass("again: ") != first:
            print("the two passwords differ; nothing changed", file=sys.stderr)
            return None
        return first
    return stream.readline().rstrip("\r\n")


async def password(
    settings: Settings, args: argparse.Namespace, stream: TextIO | None = None
) -> int:
    """`helpline counsellor password NAME [--totp | --no-totp]`."""
    from bot.web.auth import MIN_PASSWORD, new_totp_secret, set_password, set_totp, totp_uri
    from storage.db import Database

    secret = await asyncio.to_thread(read_password, stream or sys.stdin)
    if secret is None:
        return 1
    if len(secret) < MIN_PASSWORD:
        print(f"a password needs at least {MIN_PASSWORD} characters", file=sys.stderr)
        return 2
    db = Database(settings.database_url)
    try:
        counsellor = await set_password(db, args.name, secret)
        if counsellor is None:
            print(f"no counsellor named {args.name!r} (helpline counsellor add ...)",
                  file=sys.stderr)
            return 1
        print(f"web console password set for {counsellor.name}; their other sessions ended")
        if args.totp:
            totp = new_totp_secret()
            await set_totp(db, args.name, totp)
            # Shown once, to the administrator's terminal: the counsellor adds it to their
            # authenticator app (or scans the URI as a QR code).
            print(f"second factor on. Secret: {totp}")
            print(f"URI: {totp_uri(totp, counsellor.name)}")
        elif args.no_totp:
            await set_totp(db, args.name, None)
            print("second factor off")
        return 0
    finally:
        await db.dispose()


async def serve(settings: Settings) -> int:
    """`helpline web`: the console alone, next to a main job running elsewhere on the same
    database. It delivers what the desk produces when it can and leaves the rest in the outbox
    for the main job; it takes no desk notices (those belong to the main job's desks)."""
    from bot.app import build_app
    from bot.web import run_console

    app = build_app(settings)
    try:
        await run_console(app, notify=False)
    finally:
        await app.close()
    return 0
