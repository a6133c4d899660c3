"""Delivery: every pending alert of the outbox to every channel its tags match, exactly once.

Per alert and per channel: a delivery is claimed (host:pid) in a committed transaction before it
is sent, so two overlapping runs never send it twice, and marked ``sent`` in its own commit right
after the channel accepted it, so a retry never re-sends to a channel that already has it. The
only window for a duplicate is a process killed between the channel's acceptance and that commit:
one message on one channel at most (docs/alerts.md).

Every message is fitted to its channel's limits (monitor.messages_fit) unless the channel's URL
chose Apprise's own ``overflow=split``; a digest too long for one message is packed into several
that fit, each claimed and marked on its own. An article announced by several alerts (a rule, a
section it joined, ``--send-latest``) reaches a channel once: the outbox's unique index on
(article, channel) refuses the claim of a second one (archive/outbox.py), which then counts as
delivered there.

A message sent without an answer in time (monitor.channels.READ_TIMEOUT) may have arrived: its
delivery is ``unknown``, never re-sent by itself (that was a duplicate every run), reported, and
re-sent only by ``notify --resend-unknown``. That channel gets nothing more in the same run.

A channel that refuses a message is reported by the run that met it (``DeliveryResult.failures``:
which channel, its tags, how many alerts; monitor/trouble.py), and the admin tag's channels that
did not fail hear of a new episode once.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from typing import Any

from npi_crawler import settings as defaults
from npi_crawler.archive import Archive
from npi_crawler.archive.db import parse_stamp
from npi_crawler.archive.outbox import ANNOUNCEMENTS
from npi_crawler.monitor.messages import digest_item, digest_title, format_digest, more_line
from npi_crawler.monitor.messages_fit import Limits, chosen_overflow, fit, fit_list, pack
from npi_crawler.monitor.trouble import ChannelFailure, next_attempt, run_pace, tell_admins
from npi_crawler.runner import STOPS

CLAIM_SECONDS = 600  # a delivery claimed by a process that died is retried after this long
CLAIMANT = f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class DeliveryResult:
    sent: int = 0  # messages delivered this run (a digest counts once per channel)
    alerts_sent: int = 0  # alerts now fully delivered
    failed: int = 0  # deliveries that failed this run (the alerts stay pending)
    unknown: list[tuple[str, str, str]] = field(default_factory=list)  # sent, no answer: (label, title, why)
    pending: int = 0  # alerts still pending after this run
    stuck: int = 0  # pending alerts that failed NPI_ALERT_MAX_ATTEMPTS times or more
    unrouted: int = 0  # alerts no channel's tags match (never sent)
    errors: list[str] = field(default_factory=list)  # one line per failed channel, redacted
    plan: list[tuple[str, str, str]] = field(default_factory=list)  # dry run: (label, title, body)
    failures: dict[str, ChannelFailure] = field(default_factory=dict)  # by channel id: who refused what
    newly_stuck: int = 0  # alerts whose failure this run made them stuck
    next_attempt: str = ""  # when the pending alerts are tried again (with failures only)
    admins_told: list[str] = field(default_factory=list)  # admin channels told of the failures


@dataclass
class DeliveryOptions:
    digest: bool = False
    dry_run: bool = False
    max_attempts: int = 5
    flood_limit: int = 0
    admin_tag: str = defaults.NPI_ADMIN_TAG


def _alive(claimant: str | None) -> bool:
    """Whether the process that claimed a delivery may still be sending it."""
    host, _, pid = (claimant or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another machine (or unknown): trust the claim until it expires
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _batches(alerts: list[dict[str, Any]], channels: list, route: dict, done: set, options: DeliveryOptions) -> list:
    """(channel, alerts) pairs to send: one alert each, or the articles of one channel in as few
    messages as fit with ``--digest`` (also without it when a backlog, e.g. weeks without a
    channel, would be a flood). Attention messages always go on their own."""
    batches = []
    for channel in channels:
        mine = [a for a in alerts if channel in route[a["id"]] and (a["id"], channel.id) not in done]
        articles = [a for a in mine if a["kind"] != "attention"]
        if options.digest or (options.flood_limit and len(articles) > options.flood_limit):
            batches += [(channel, [a]) for a in mine if a["kind"] == "attention"]
            if articles:
                batches += [(channel, group) for group in _packed(channel, articles)]
        else:
            batches += [(channel, [a]) for a in mine]
    return batches


def _announces(alert: dict[str, Any]) -> bool:
    return alert["kind"] in ANNOUNCEMENTS and bool(alert.get("article_url"))


def _split_by_apprise(channel: Any) -> bool:
    """The channel's URL says ``overflow=split``: the user chose Apprise's splitting."""
    return chosen_overflow(channel.server) == "split"


def _packed(channel: Any, alerts: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    if _split_by_apprise(channel):
        return [alerts]
    groups = pack([digest_item(a) for a in alerts], Limits.of(channel.server), digest_title)
    return [[alerts[i] for i in group] for group in groups]


def _message(channel: Any, batch: list[dict[str, Any]]) -> tuple[str, str]:
    """The title and body ``batch`` is sent as on ``channel``, fitted to its limits."""
    title, body = (batch[0]["title"], batch[0]["body"]) if len(batch) == 1 else format_digest(batch)
    if _split_by_apprise(channel):
        return title, body
    limits = Limits.of(channel.server)
    parts = _flood_parts(batch[0]) if len(batch) == 1 else None
    if parts:
        title, body, _shown = fit_list(title, parts["head"], parts["items"], more_line, limits, left=parts["more"])
        return title, body
    return fit(title, body, limits)


def _flood_parts(alert: dict[str, Any]) -> dict[str, Any] | None:
    """The data a flood summary is made of (``messages.format_flood``), as stored in the outbox."""
    parts = alert.get("parts")
    return json.loads(parts) if isinstance(parts, str) else parts


def _completed(batch: list[dict[str, Any]], route: dict, done: set) -> list[int]:
    """The alerts of ``batch`` that every channel they go to now has."""
    return [a["id"] for a in batch if all((a["id"], c.id) in done for c in route[a["id"]])]


def _send_batches(
    archive: Archive, batches: list, route: dict, done: set, result: DeliveryResult, send: Any
) -> dict[int, str]:
    """Claim, send and record each batch; returns the failure of each alert that failed. An alert
    whose last channel has it is settled (``sent``) in the same commit as that delivery: a stop
    after it (the next batch never starts) leaves no alert ``pending`` that went out everywhere."""
    failed: dict[int, str] = {}
    silent: set[str] = set()  # channels that did not answer this run: nothing more goes to them
    for channel, batch in batches:
        if channel.id in silent:
            continue
        ids, covered = archive.claim_deliveries(
            [a["id"] for a in batch],
            channel.id,
            channel.label,
            CLAIMANT,
            lapse_seconds=CLAIM_SECONDS,
            alive=_alive,
            announces={a["id"]: a["article_url"] for a in batch if _announces(a)},
        )
        done.update((i, channel.id) for i in covered)  # the channel has the article from another alert
        batch = [a for a in batch if a["id"] in ids]
        if not batch:  # another process is sending these right now
            continue
        # A stop signal waits for this message's outcome to be recorded (stops.uninterrupted):
        # a stop never sends an alert and then forgets that it did.
        with STOPS.uninterrupted():
            title, body = _message(channel, batch)
            ok, error = send(channel, title, body)
            if ok is not False:  # sent, or sent without an answer: never re-sent by itself
                done.update((a["id"], channel.id) for a in batch)
            completed = _completed(batch, route, done) if ok is not False else []
            archive.record_deliveries([a["id"] for a in batch], channel.id, ok=ok, error=error, completed=completed)
        if ok is None:
            silent.add(channel.id)
            result.unknown.append((channel.label, title, error))
        elif ok:
            result.sent += 1
        else:
            result.failed += 1
            result.errors.append(f"{channel.label}: {error}")
            failure = result.failures.setdefault(channel.id, ChannelFailure(channel.name))
            failure.alerts.update(a["id"] for a in batch)
            failure.error = error
            failed.update({a["id"]: f"{channel.label}: {error}" for a in batch})
    return failed


def deliver(
    archive: Archive,
    channels: list,
    options: DeliveryOptions | None = None,
    *,
    extra: list[dict[str, Any]] | None = None,
) -> DeliveryResult:
    """Send every pending alert to every channel its tags match that has not had it yet.

    ``options.dry_run`` only fills ``plan`` (``extra`` adds alerts a rolled-back diff would have
    created). Apprise is imported only when a channel is given (monitor.channels).
    """
    options = options or DeliveryOptions()
    result = DeliveryResult()
    alerts = archive.pending_alerts() + list(extra or [])
    if not channels:
        result.pending = len(alerts)
        result.stuck = sum(1 for a in alerts if (a.get("attempts") or 0) >= options.max_attempts)
        if options.dry_run:
            result.plan = [("(no channel)", a["title"], a["body"]) for a in alerts]
        return result
    from npi_crawler.monitor.channels import bind, send, targets

    channels = bind(channels, archive.channel_key(create=not options.dry_run))  # a dry run writes no file
    route = {a["id"]: targets(a, channels) for a in alerts}
    announced = archive.announced()
    done = archive.sent_deliveries() | {
        (a["id"], c.id) for a in alerts if _announces(a) for c in route[a["id"]] if (a["article_url"], c.id) in announced
    }
    batches = _batches(alerts, channels, route, done, options)
    if options.dry_run:
        result.plan = [(channel.label, *_message(channel, batch)) for channel, batch in batches]
        result.pending = len(alerts)
        return result
    failing_before = archive.failing_channels() if batches else set()
    failed = _send_batches(archive, batches, route, done, result, send)
    unrouted = [a["id"] for a in alerts if not route[a["id"]]]
    sent = [a["id"] for a in alerts if route[a["id"]] and all((a["id"], c.id) in done for c in route[a["id"]])]
    failed = {i: e for i, e in failed.items() if i not in sent}
    archive.settle_alerts(unrouted=unrouted, sent=sent, failed=failed)
    result.unrouted, result.alerts_sent = len(unrouted), len(sent)
    result.pending, result.stuck = archive.alert_backlog(options.max_attempts)
    attempts = {a["id"]: a.get("attempts") or 0 for a in alerts}
    result.newly_stuck = sum(1 for i in failed if attempts[i] + 1 == options.max_attempts)
    if result.failures or result.newly_stuck:
        _tell(archive, channels, result, options, failing_before, send)
    return result


def _tell(archive: Archive, channels: list, result: DeliveryResult, options: DeliveryOptions, before: set, send: Any) -> None:
    """Failures found this run: when the next attempt is, and a word to the admin channels."""
    for channel_id, failure in result.failures.items():
        failure.first = channel_id not in before
    result.next_attempt = next_attempt(run_pace(parse_stamp(r["started"]) for r in archive.recent_runs(9)))
    result.admins_told = tell_admins(
        channels,
        result.failures,
        stuck=result.newly_stuck,
        max_attempts=options.max_attempts,
        admin_tag=options.admin_tag,
        when=result.next_attempt,
        send=send,
        skip=[label for label, _title, _why in result.unknown],
    )
