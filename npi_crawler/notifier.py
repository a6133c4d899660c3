"""Alerts: formatting (pure), channels (Apprise, validated up front), delivery with outbox bookkeeping.

Formatting is separate from sending: every channel gets the same text. Delivery is per alert and
per channel: a channel that answered is marked ``sent`` for that alert in its own committed
transaction right after Apprise's ``notify()`` returned True, so a retry never re-sends to a
channel that already has the message. The only window for a duplicate is a process killed between
``notify()`` returning and that commit: one message on one channel at most.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import logging
import os
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import apprise

from npi_crawler.storage import SECTION_NAMES, Archive, utcnow

PREFIX = "NPI"
EXCERPT_CHARS = 300
ATTENTION_TITLE = "npi-crawler needs attention"
CLAIM_SECONDS = 600  # a delivery claimed by a process that died is retried after this long
KIND_LABEL = {"new": "", "changed": "Updated: ", "removed": "Removed: "}


class ChannelError(Exception):
    """A channel (Apprise URL or config file) is unusable; the message is one line, secrets redacted."""


# -- formatting (pure) ----------------------------------------------------------------------------


def alert_tags(lang: str, sections: Iterable[str]) -> list[str]:
    """The tags an article alert carries: ``all``, its language, each of its sections, and each
    ``section-lang`` pair (e.g. ``all, en, policy, industry, policy-en, industry-en``)."""
    sections = list(sections)
    return ["all", lang, *sections, *(f"{s}-{lang}" for s in sections)]


def excerpt(body: str, limit: int = EXCERPT_CHARS) -> str:
    text = " ".join(body.split("\n\n")[:3]).strip()
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def format_article(article: dict[str, Any], kind: str, watched_sections: list[str]) -> dict[str, Any]:
    """Title, body and tags of one article alert. ``watched_sections`` picks the prefix."""
    lang = article["lang"]
    first = (watched_sections or article["sections"] or ["npi"])[0]
    title = f"[{PREFIX} {first}/{lang}] {KIND_LABEL.get(kind, '')}{article['title']}"
    names = [SECTION_NAMES[s][0 if lang == "ja" else 1] for s in article["sections"] if s in SECTION_NAMES]
    lines = [
        f"Date: {article.get('published') or 'unknown'}",
        f"Sections: {', '.join(names) or 'none'}",
        "",
    ]
    if kind == "removed":
        lines.append("The article's page now answers 404/410.")
    elif body := excerpt(article.get("body") or ""):
        lines.append(body)
    lines += ["", article["url"]]
    return {
        "url": article["url"],
        "title": title,
        "body": "\n".join(lines),
        "tags": alert_tags(lang, article["sections"]),
    }


def format_attention(problems: list[str], admin_tag: str) -> dict[str, Any]:
    body = "\n".join(
        [
            "The site's HTML seems to have changed; this run recorded no removals and sent no article alerts.",
            *problems,
            "Check recent articles' parse_notes and the runs' stats (npi-crawler status); see docs/alerts.md.",
        ]
    )
    return {"title": ATTENTION_TITLE, "body": body, "tags": [admin_tag]}


def format_flood(messages: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    """One summary for a burst over the flood limit, routed to every channel that would have had
    any of its alerts (the union of their tags)."""
    tags = list(dict.fromkeys(t for m in messages for t in m["tags"]))
    shown = messages[:limit]
    lines = [
        f"{len(messages)} alerts at once, more than the limit of {limit} (NPI_ALERT_FLOOD_LIMIT): "
        "the site may have been reorganised or its URLs changed. They are recorded in the events "
        "table and summed up here instead of being sent one by one.",
        "",
    ]
    lines += [f"{m['title']}\n{m['url']}" for m in shown]
    if len(messages) > limit:
        lines.append(f"... and {len(messages) - limit} more (npi-crawler status; table events)")
    return {"title": f"[{PREFIX}] {len(messages)} new items at once", "body": "\n".join(lines), "tags": tags}


def format_digest(alerts: list[dict[str, Any]]) -> tuple[str, str]:
    """One message listing several alerts (``--digest``)."""
    title = f"[{PREFIX}] {len(alerts)} new item{'s' if len(alerts) != 1 else ''}"
    parts = []
    for alert in alerts:
        parts.append(alert["title"] + (f"\n{alert['article_url']}" if alert.get("article_url") else ""))
    return title, "\n\n".join(parts)


# -- secrets --------------------------------------------------------------------------------------


def _is_hostname(host: str) -> bool:
    if host == "localhost" or "." in host and re.fullmatch(r"[A-Za-z0-9.-]+", host):
        return True
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


def redact(url: str) -> str:
    """Scheme and host only (``json://127.0.0.1``, ``mailto://smtp.example.com``); a "host" that
    is really a token (Slack, Discord, Telegram, ntfy topics) is not shown at all."""
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme or "?"
        host = parts.hostname or ""
    except ValueError:
        return "?://…"
    return f"{scheme}://{host}" if host and _is_hostname(host) else f"{scheme}://…"


def scrub(message: str, secret_url: str) -> str:
    """An error message with every URL reduced to scheme and host and the channel's own secret
    parts (path pieces, user, password, query values) masked."""
    message = re.sub(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>]+", lambda m: redact(m.group(0)), message)
    host = (urlsplit(secret_url).hostname or "").lower()
    for piece in set(re.split(r"[/:@?&=#,]+", secret_url.split("://", 1)[-1])):
        if len(piece) >= 4 and piece.lower() != host:
            message = message.replace(piece, "****")
    return message[:500]


# -- channels -------------------------------------------------------------------------------------


@dataclass
class Channel:
    id: str  # a hash of the full URL: identifies the channel in the outbox without storing secrets
    label: str  # redacted, safe to print
    tags: frozenset[str]
    server: Any = field(repr=False)  # an Apprise plugin instance
    url: str = field(repr=False, default="")

    def matches(self, tags: Iterable[str]) -> bool:
        """Untagged channels (``--notify`` URLs) get everything; a channel tagged ``always`` too
        (Apprise's convention); otherwise at least one tag must be in common."""
        if not self.tags or "always" in self.tags:
            return True
        return bool(self.tags & set(tags))


def _quiet_apprise() -> logging.Logger:
    logger = logging.getLogger("apprise")
    logger.propagate = False  # its messages may name URLs: never let them reach a terminal as is
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    return logger


def _channel(server: Any) -> Channel:
    url = server.url(privacy=False)
    return Channel(
        id=hashlib.sha256(url.encode()).hexdigest()[:16],
        label=redact(url),
        tags=frozenset(str(t) for t in server.tags),
        server=server,
        url=url,
    )


def load_channels(urls: Iterable[str] = (), config: str | None = None) -> list[Channel]:
    """Every channel of the ``--notify`` URLs and the Apprise ``--config`` file, validated now
    (before any crawl) so that a typo is one clear line, not a failure at send time."""
    _quiet_apprise()
    channels: list[Channel] = []
    for n, url in enumerate(u for u in urls if u.strip()):
        one = apprise.Apprise()
        if not one.add(url.strip()):
            raise ChannelError(
                f"--notify #{n + 1} ({redact(url)}) is not a valid Apprise URL; see https://appriseit.com/services/"
            )
        channels += [_channel(s) for s in one.find()]
    if config:
        if not os.path.isfile(config):
            raise ChannelError(f"--config {config}: no such file")
        ac = apprise.AppriseConfig()
        if not ac.add(os.path.abspath(config)):
            raise ChannelError(f"--config {config} cannot be read as an Apprise config file")
        loaded = apprise.Apprise()
        loaded.add(ac)
        servers = list(loaded.find())
        if not servers:
            raise ChannelError(
                f"--config {config} holds no valid Apprise URL (YAML or TEXT format, see docs/alerts.md)"
            )
        channels += [_channel(s) for s in servers]
    unique = {c.id: c for c in channels}
    return list(unique.values())


def targets(alert: dict[str, Any], channels: list[Channel]) -> list[Channel]:
    tags = (
        [t for t in (alert.get("tags") or "").split(",") if t]
        if isinstance(alert.get("tags"), str)
        else alert["tags"]
    )
    found = [c for c in channels if c.matches(tags)]
    if not found and alert["kind"] == "attention":
        return list(channels)  # nobody has the admin tag: better everyone than no one
    return found


# -- delivery -------------------------------------------------------------------------------------


@dataclass
class DeliveryResult:
    sent: int = 0  # messages delivered this run (a digest counts once per channel)
    alerts_sent: int = 0  # alerts now fully delivered
    failed: int = 0  # deliveries that failed this run (the alerts stay pending)
    pending: int = 0  # alerts still pending after this run
    stuck: int = 0  # pending alerts that failed NPI_ALERT_MAX_ATTEMPTS times or more
    unrouted: int = 0  # alerts no channel's tags match (never sent)
    errors: list[str] = field(default_factory=list)  # one line per failed channel, redacted
    plan: list[tuple[str, str, str]] = field(default_factory=list)  # dry run: (label, title, body)


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def send(channel: Channel, title: str, body: str) -> tuple[bool, str]:
    """One message to one channel. Apprise does not retry and answers only True/False; the reason
    of a failure is taken from its log, scrubbed of secrets."""
    logger = _quiet_apprise()
    capture = _Capture()
    logger.addHandler(capture)
    try:
        ok = bool(channel.server.notify(body=body, title=title))
    except Exception as exc:  # a plugin bug must not lose the outbox's bookkeeping
        ok, capture.messages = False, [f"{type(exc).__name__}: {exc}"]
    finally:
        logger.removeHandler(capture)
    error = "" if ok else scrub((capture.messages or ["delivery failed"])[-1], channel.url)
    return ok, error


def pending_alerts(archive: Archive) -> list[dict[str, Any]]:
    return list(archive.db.query("SELECT * FROM alerts WHERE status = 'pending' ORDER BY id"))


def deliver(
    archive: Archive,
    channels: list[Channel],
    *,
    digest: bool = False,
    dry_run: bool = False,
    max_attempts: int = 5,
    flood_limit: int = 0,
    extra: list[dict[str, Any]] | None = None,
) -> DeliveryResult:
    """Send every pending alert to every channel its tags match that has not had it yet.

    ``dry_run`` only fills ``plan`` (``extra`` adds alerts a rolled-back diff would have created).
    """
    result = DeliveryResult()
    alerts = pending_alerts(archive) + list(extra or [])
    if not channels:
        result.pending = len(alerts)
        result.stuck = sum(1 for a in alerts if (a.get("attempts") or 0) >= max_attempts)
        if dry_run:
            result.plan = [("(no channel)", a["title"], a["body"]) for a in alerts]
        return result
    done = {
        (r[0], r[1])
        for r in archive.db.execute("SELECT alert_id, channel FROM deliveries WHERE status = 'sent'")
    }
    # (channel, alerts) batches: one alert each, or with --digest one batch of articles per channel
    batches: list[tuple[Channel, list[dict[str, Any]]]] = []
    route: dict[int, list[Channel]] = {}
    for alert in alerts:
        route[alert["id"]] = targets(alert, channels)
    for channel in channels:
        mine = [a for a in alerts if channel in route[a["id"]] and (a["id"], channel.id) not in done]
        articles = [a for a in mine if a["kind"] != "attention"]
        if digest or (flood_limit and len(articles) > flood_limit):
            # attention messages stay on their own; the article alerts go into one message (also
            # without --digest when a backlog, e.g. weeks without a channel, would be a flood)
            batches += [(channel, [a]) for a in mine if a["kind"] == "attention"]
            if articles:
                batches.append((channel, articles))
        else:
            batches += [(channel, [a]) for a in mine]
    failed_alerts: dict[int, str] = {}
    for channel, batch in batches:
        if not dry_run:
            batch = _claim(archive, channel, batch)
            if not batch:  # another process is sending these right now
                continue
        if len(batch) == 1:
            title, body = batch[0]["title"], batch[0]["body"]
        else:
            title, body = format_digest(batch)
        if dry_run:
            result.plan.append((channel.label, title, body))
            continue
        ok, error = send(channel, title, body)
        now = utcnow()
        with archive.transaction() as conn:
            conn.executemany(
                "UPDATE deliveries SET status = ?, attempts = attempts + 1, last_error = ?, last_attempt = ?, "
                "sent_at = ? WHERE alert_id = ? AND channel = ?",
                [
                    (
                        "sent" if ok else "failed",
                        error or None,
                        now,
                        now if ok else None,
                        alert["id"],
                        channel.id,
                    )
                    for alert in batch
                ],
            )
        if ok:
            result.sent += 1
            done.update((a["id"], channel.id) for a in batch)
        else:
            result.failed += 1
            result.errors.append(f"{channel.label}: {error}")
            for alert in batch:
                failed_alerts[alert["id"]] = f"{channel.label}: {error}"
    if dry_run:
        result.pending = len(alerts)
        return result
    now = utcnow()
    with archive.transaction() as conn:
        for alert in alerts:
            if not route[alert["id"]]:
                conn.execute("UPDATE alerts SET status = 'unrouted' WHERE id = ?", [alert["id"]])
                result.unrouted += 1
            elif all((alert["id"], c.id) in done for c in route[alert["id"]]):
                conn.execute(
                    "UPDATE alerts SET status = 'sent', sent_at = ? WHERE id = ?", [now, alert["id"]]
                )
                result.alerts_sent += 1
            elif alert["id"] in failed_alerts:
                conn.execute(
                    "UPDATE alerts SET attempts = attempts + 1, last_error = ?, last_attempt = ? WHERE id = ?",
                    [failed_alerts[alert["id"]], now, alert["id"]],
                )
    result.pending, result.stuck = alert_backlog(archive, max_attempts)
    return result


CLAIMANT = f"{socket.gethostname()}:{os.getpid()}"


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


def _claim(archive: Archive, channel: Channel, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mark (alert, channel) pairs ``sending`` before sending, in a committed transaction, and
    return those this process may send: not sent yet, and not claimed by another process within
    the last CLAIM_SECONDS by another live process. Two overlapping runs therefore never send the
    same alert twice; the claim of a process that died (on this host: its PID is gone; elsewhere:
    after CLAIM_SECONDS) lapses and the alert is retried."""
    now = dt.datetime.now(dt.timezone.utc)
    fresh = (now - dt.timedelta(seconds=CLAIM_SECONDS)).strftime("%Y-%m-%dT%H:%M:%SZ")
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    mine = []
    with archive.transaction() as conn:
        for alert in batch:
            row = conn.execute(
                "SELECT status, last_attempt, claimed_by FROM deliveries WHERE alert_id = ? AND channel = ?",
                [alert["id"], channel.id],
            ).fetchone()
            if row and (
                row[0] == "sent" or (row[0] == "sending" and (row[1] or "") > fresh and _alive(row[2]))
            ):
                continue
            conn.execute(
                "INSERT INTO deliveries (alert_id, channel, label, status, attempts, last_attempt, claimed_by) "
                "VALUES (?, ?, ?, 'sending', 0, ?, ?) ON CONFLICT (alert_id, channel) DO UPDATE SET "
                "status = 'sending', last_attempt = excluded.last_attempt, claimed_by = excluded.claimed_by",
                [alert["id"], channel.id, channel.label, stamp, CLAIMANT],
            )
            mine.append(alert)
    return mine


def alert_backlog(archive: Archive, max_attempts: int) -> tuple[int, int]:
    """(pending alerts, of which stuck: failed ``max_attempts`` times or more)."""
    row = archive.db.execute(
        "SELECT count(*), coalesce(sum(attempts >= ?), 0) FROM alerts WHERE status = 'pending'",
        [max_attempts],
    ).fetchone()
    return int(row[0]), int(row[1])
