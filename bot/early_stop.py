"""A stop asked for while `helpline run` is still starting up.

Importing the app, loading the triage model and checking the schema take a few seconds, and the
event loop's own signal handlers (`bot.runner.stop_on_signals`) exist only after that. A SIGTERM
in those seconds (a deploy rolled back, `docker stop` right after `docker start`) would otherwise
end the process with the default action: killed by the signal, no graceful stop, exit code -15.
`catch` is called first thing; it only notes the request (and puts the default action back, so a
second signal still ends the process at once). `helpline run` looks at it between the start-up's
steps (`bot.cli._stopped_early`) and stops there with exit code 0, before it has taken anything
in; once the event loop's handlers exist, `bot.runner.stop_on_signals` stops at once, after the
start-up's own recovery, like any other graceful stop. This module imports nothing heavy.
"""

from __future__ import annotations

import signal
from types import FrameType

_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_requested: signal.Signals | None = None


def _default(sig: signal.Signals) -> object:
    return signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL


def _on_signal(signum: int, frame: FrameType | None) -> None:
    global _requested
    sig = signal.Signals(signum)
    _requested = sig
    for each in _SIGNALS:
        signal.signal(each, _default(each))  # type: ignore[arg-type]


def catch() -> None:
    """From now on, note SIGTERM/SIGINT instead of dying of them (main thread only)."""
    for sig in _SIGNALS:
        signal.signal(sig, _on_signal)


def release() -> None:
    """Give the signals their default actions back (the console chat, which has no graceful
    stop of its own: Ctrl-C and SIGTERM end it as usual)."""
    for sig in _SIGNALS:
        if signal.getsignal(sig) is _on_signal:
            signal.signal(sig, _default(sig))  # type: ignore[arg-type]


def requested() -> signal.Signals | None:
    """The signal that asked for a stop during start-up, if one did."""
    return _requested
