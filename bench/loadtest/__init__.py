"""Load benchmark: the real `helpline run` (Telegram long polling) against a fake Bot API on
127.0.0.1, with 1,000 simulated children and a few counsellors, next to a bare aiogram echo bot
against the same fake server.

    .venv/bin/python bench/load.py [--users 1000] [--duration 60] [--db sqlite|pg|both]
    make bench

What runs:
- this process: the fake Bot API (aiohttp) and the simulated people;
- a subprocess `bench/echo_bot.py` (the yardstick), then a subprocess running `helpline run`
  (bot.cli) on a fresh SQLite file (or a fresh PostgreSQL database: `--db pg` uses
  DATABASE_URL if it is a PostgreSQL URL, else HELPLINE_TEST_DATABASE_URL, else re-runs itself
  under scripts/with-postgres.sh). Counsellors are registered with `helpline counsellor add`
  and TELEGRAM_STAFF_CHAT_ID points at the fake staff forum, so the Telegram desk works.
  The bot runs as shipped, with one setting: SEND_PACING=off lifts Telegram's published send
  limits (30 messages a second in all, 1 a second per chat, 20 a minute per group), since the
  fake server has no limits to respect and the benchmark measures the bot (the setting is
  refused with Telegram's real API URL). The per-user flood limiter (EngineConfig, 20 burst,
  1 a second) is kept: each simulated user paces itself under it (10 burst, 0.9 a second).

Children walk scripts: a report step by step (then advice, or a counsellor), a safety question
answered from the knowledge base (as a child or a parent), a danger message ("I don't want to
live") at the menu or in the middle of a report, and asking for a person. Whoever gets a case
number waits for a counsellor; counsellors (simulated in the staff forum) take waiting cases,
critical first, write to the child, read the child's answer, close the case with an outcome, and
the child rates the help. A child who waits too long leaves the queue, as children do.

Phases: the echo bot with N users sending as fast as they get answers (saturated); then the help
line with N users reading and thinking between messages (--think, default 5-15 s: the "1,000
concurrent users" figure), then the same users with no pause (saturated: the throughput figure).

Figures: updates per second (the bot's own helpline_updates_total counter, read from /metrics at
both ends of the window), reply latency from the moment the fake makes an update available to
getUpdates to the bot's first message to that chat, danger message -> first staff-group message
carrying the child's words (the new critical case's card in its new topic, or the line copied
into the case's topic when the child already had a case), counsellor -> child, peak RSS (VmHWM of
the bot process), database size per 1,000 conversations, CPU used by each process.

With --flood, the flood run instead (`make bench-flood`): on each database, --users children
thinking as above, a quiet window of --duration seconds, then one as long that begins with one
more child sending --flood-messages texts at once (a danger message in the middle). It prints
the others' reply latency in both windows, how soon the flooder's danger message is answered
and alerted, and how many times the flooder is told to slow down (bench/loadtest/flood.py).

This is a script that prints figures, not a test. Loopback only; every loop is bounded by the
phase clock.

The modules, one job each: `fake` (the tests' fake Bot API set up for a long run, and the
switchboard between it and the simulated people), `texts` (what the people recognise), `people`
(children), `desk` (the staff forum and the counsellors), `measure` (phases, windows, the clock),
`processes` (the bot and the echo bot as subprocesses), `database`, `runs` (the phases),
`flood`, `report` (the table) and `cli` (options and the entry point). `bench/load.py` and
`python -m bench.loadtest` run it.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
