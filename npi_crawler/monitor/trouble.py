"""Delivery trouble, told at once: which channel refused what this run, and when it is tried again.

A channel that refuses a message (down, 5xx, a bad token) is reported by the run that met it: one
line per channel on stderr (the CLI's ``needs attention``; cron mails it even with ``--quiet``) and
exit 3, not five runs later when its alerts count as stuck. The channels of the admin tag hear of
it too, once per episode (the first failing run of a channel, and the run whose failure makes
alerts stuck), and never through a channel that failed in the same run: a dead channel cannot
carry the news of its own death, so stderr always has it (docs/alerts.md).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from npi_crawler.monitor.messages import ATTENTION_TITLE
from npi_crawler.monitor.messages_fit import Limits, fit


@dataclass
class ChannelFailure:
    """One channel that refused messages this run."""

    name: str  # its redacted URL and its tags (monitor.channels.Channel.name)
    alerts: set[int] = field(default_factory=set)  # the alerts it refused this run
    error: str = ""  # its last refusal, scrubbed
    first: bool = True  # no pending alert had failed on it before this run: an episode starts


def run_pace(starts: Iterable[dt.datetime | None]) -> dt.timedelta | None:
    """How often runs start here: the median gap between the recent runs' starts (newest first),
    None with fewer than three runs. A gap that is not positive (a clock set back) is left out."""
    times = [t for t in starts if t is not None]
    gaps = sorted(a - b for a, b in itertools.pairwise(times) if a > b)
    return gaps[len(gaps) // 2] if len(gaps) >= 2 else None


def next_attempt(pace: dt.timedelta | None) -> str:
    """When a pending alert is tried again: by the next run, whenever that is; the pace of the
    runs so far says about when (there is no timer of its own: every run retries everything)."""
    text = "the next run (watch or notify) sends them again"
    if pace is None:
        return text
    minutes = max(1, round(pace.total_seconds() / 60))
    every = f"{minutes} min" if minutes < 60 else f"{minutes / 60:.0f} h" if minutes < 36 * 60 else f"{minutes / 1440:.0f} d"
    return f"{text}, in about {every} at this archive's pace"


def failure_lines(failures: Iterable[ChannelFailure], when: str) -> list[str]:
    """One line per failing channel: which one, how many alerts, why, and when they go again."""
    return [
        f"npi-crawler needs attention: {f.name} refused {len(f.alerts)} alert(s) this run ({f.error}); "
        f"they stay pending: {when}"
        for f in failures
    ]


def notice(failures: list[ChannelFailure], stuck: int, max_attempts: int, when: str) -> str:
    """The body of the message the admin channels get about channels that fail."""
    lines = ["Alerts could not be delivered:"]
    lines += [f"- {f.name}: {len(f.alerts)} alert(s) refused this run ({f.error})" for f in failures]
    if stuck:
        lines.append(f"- {stuck} alert(s) are now stuck after {max_attempts} failed runs; they are still retried")
    lines += [
        "",
        f"They stay pending: {when}. Every run that meets a failure says so on stderr and exits 3; this "
        "channel hears of it once per episode. See 'npi-crawler status'.",
    ]
    return "\n".join(lines)


def tell_admins(
    channels: list[Any],
    failures: dict[str, ChannelFailure],
    *,
    stuck: int,
    max_attempts: int,
    admin_tag: str,
    when: str,
    send: Callable[[Any, str, str], tuple[bool | None, str]],
    skip: Iterable[str] = (),
) -> list[str]:
    """Tell the admin tag's channels about a new episode of failures or newly stuck alerts;
    never a channel that failed (or did not answer: ``skip``, labels) in this run. Returns the
    labels of the channels told. Sent once, not stored: stderr and the log file keep it."""
    news = [f for f in failures.values() if f.first]
    if not news and not stuck:
        return []
    silent = set(skip)
    admins = [c for c in channels if c.matches([admin_tag]) and c.id not in failures and c.label not in silent]
    body = notice(news or list(failures.values()), stuck, max_attempts, when)
    told = []
    for channel in admins:
        title, text = fit(ATTENTION_TITLE, body, Limits.of(channel.server))
        ok, _error = send(channel, title, text)
        if ok:
            told.append(channel.label)
    return told
