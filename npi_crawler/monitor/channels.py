"""Notification channels: the only module that imports Apprise, and the only redactor.

A channel is one Apprise service (a ``--notify`` URL, a settings/env URL, or an entry of an
Apprise config file), loaded and validated before any crawl so that a typo is one clear line, not
a failure at send time. Apprise answers ``notify()`` with a bool only and logs the reason of a
failure; ``send`` captures that log and keeps the reason, scrubbed of the channel's secrets.

Secrets: URLs embed passwords, user names, ports and tokens (in the path: Slack, Discord; in the
host: Telegram, ntfy topics). Output shows a channel as ``redact(url)`` (scheme and host name at
most), and every message from Apprise passes through ``scrub`` first.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import apprise

from npi_crawler.archive.channelkey import channel_id
from npi_crawler.errors import ChannelError
from npi_crawler.userfile import read_text

# Apprise URL parameters whose values are settings, never secrets: a scrubbed message keeps them
# (a failure "JSON POST notification" must still say POST).
SAFE_PARAMS = frozenset(
    "method format overflow retry wait optional image detect silent preview album content mdv verify "
    "rto cto emojis tz encoding cache mode priority footer batch avatar".split()
)
_URL_IN_TEXT = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>]+", re.I)
SERVICES_HELP = "see https://appriseit.com/services/"

# How long a channel may take to answer (Apprise's own default is 4 s). A service that answers
# later still has the message: at 4 s, a webhook that answered after 6 s was sent the same alert
# by every run. A URL's own ``rto=`` wins. The connect timeout stays Apprise's: a connection that
# is never made sent nothing, and the alert is simply retried.
READ_TIMEOUT = 30.0
# What urllib3 says (and Apprise logs at DEBUG) when the request went out and no answer came in
# time: the message may have arrived (docs/alerts.md, "unknown outcome").
_UNANSWERED = re.compile(r"\bread timed out\b", re.I)


# -- secrets --------------------------------------------------------------------------------------


def _is_hostname(host: str) -> bool:
    if host == "localhost" or ("." in host and re.fullmatch(r"[A-Za-z0-9.-]+", host)):
        return True
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


def redact(url: str) -> str:
    """A notification URL fit to print: scheme and host name only (``json://127.0.0.1``,
    ``mailto://smtp.example.com``); no user, password, port, path or query, and no "host" that
    is really a token (Telegram, ntfy topics, Discord ids)."""
    scheme = url.split("://", 1)[0] if "://" in url else "?"
    scheme = scheme if re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme) else "?"
    try:
        host = urlsplit(url.strip()).hostname or ""
    except ValueError:  # e.g. an unclosed IPv6 bracket
        host = ""
    return f"{scheme}://{host}" if host and _is_hostname(host) else f"{scheme}://…"


def url_secrets(url: str) -> frozenset[str]:
    """Every piece of ``url`` that may be secret: user, password, port, path segments, query
    values (but those of SAFE_PARAMS), a token-like host, and their percent-decoded forms."""
    rest = url.split("://", 1)[-1]
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", str(parts.port or "")
        pieces = [parts.username or "", parts.password or "", port, parts.fragment]
        pieces += parts.path.split("/")
        pieces += [v for k, v in parse_qsl(parts.query) if k.lower() not in SAFE_PARAMS]
        if host and not _is_hostname(host):
            pieces.append(host)
    except ValueError:  # unparseable: every piece between separators is suspect
        pieces = re.split(r"[/:@?&=#,\[\]]+", rest)
    expanded = set()
    for piece in pieces:
        for form in {piece, unquote(piece)}:
            expanded.add(form)
            expanded.update(re.split(r"[:@]", form))  # bot ids, user@domain: parts of a token too
    return frozenset(p for p in expanded if len(p) >= 3)


@functools.lru_cache(maxsize=64)
def _secrets_pattern(secrets: frozenset[str]) -> re.Pattern[str] | None:
    if not secrets:
        return None
    longest_first = "|".join(re.escape(s) for s in sorted(secrets, key=lambda s: (-len(s), s)))
    return re.compile(rf"(?<![A-Za-z0-9])(?:{longest_first})(?![A-Za-z0-9])")


def mask(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret masked as ``****`` where it stands as a whole word; the rest
    (URLs, line breaks, length) as it was: what the log filter keeps of a record."""
    pattern = _secrets_pattern(frozenset(secrets))
    return pattern.sub("****", text) if pattern else text


def scrub(message: str, secrets: str | Iterable[str]) -> str:
    """``message`` with every URL in it redacted and every secret masked as ``****``; one line.
    ``secrets`` is a channel's URL (its ``url_secrets``) or the secrets themselves."""
    if isinstance(secrets, str):
        secrets = url_secrets(secrets)
    message = mask(_URL_IN_TEXT.sub(lambda m: redact(m.group(0)), message), secrets)
    return " ".join(message.split())[:500]


# -- channels -------------------------------------------------------------------------------------


@dataclass
class Channel:
    fingerprint: str  # a digest of the full URL; in memory only, never stored (it is guessable)
    label: str  # redacted, safe to print
    tags: frozenset[str]
    server: Any = field(repr=False)  # an Apprise plugin instance
    secrets: frozenset[str] = field(repr=False, default=frozenset())
    key: bytes | None = field(repr=False, default=None)  # the archive's channel key (bind)

    @property
    def id(self) -> str:
        """The channel in the outbox: a keyed hash of its URL (archive/channelkey.py), which a
        copy of the database alone does not let anyone test guesses against."""
        if self.key is None:
            raise RuntimeError("a channel has an id only once bound to an archive's key (channels.bind)")
        return channel_id(self.key, self.fingerprint)

    @property
    def name(self) -> str:
        """The channel as a person tells it from the others: its redacted URL and its tags."""
        tags = ", ".join(sorted(self.tags))
        return f"{self.label} (tags: {tags})" if tags else f"{self.label} (no tags: every alert)"

    def matches(self, tags: Iterable[str]) -> bool:
        """Untagged channels (``--notify`` URLs) get everything; a channel tagged ``always`` too
        (Apprise's convention); otherwise at least one tag must be in common."""
        if not self.tags or "always" in self.tags:
            return True
        return bool(self.tags & set(tags))


def _apprise_logger() -> logging.Logger:
    logger = logging.getLogger("apprise")
    logger.propagate = False  # its messages may name URLs: never let them reach a terminal as is
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    return logger


class _Records(logging.Handler):
    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def apprise_log(level: int = logging.WARNING) -> Iterator[list[logging.LogRecord]]:
    """Apprise's log records at ``level`` and above while the block runs (unscrubbed: callers
    scrub what they keep)."""
    logger = _apprise_logger()
    handler = _Records(level)
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(min(level, previous or level))
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def _patient(server: Any) -> None:
    """READ_TIMEOUT for a channel whose URL leaves the read timeout at its plugin's default."""
    if server.socket_read_timeout == type(server).socket_read_timeout < READ_TIMEOUT:
        server.socket_read_timeout = READ_TIMEOUT


def _channel(server: Any) -> Channel:
    url = server.url(privacy=False)  # before _patient: the id of a channel must not change
    _patient(server)
    return Channel(
        fingerprint=hashlib.sha256(url.encode()).hexdigest()[:16],
        label=redact(url),
        tags=frozenset(str(t) for t in server.tags),
        server=server,
        secrets=url_secrets(url),
    )


# -- secrets in the log ---------------------------------------------------------------------------

_LOGGED_SECRETS: set[str] = set()


def _masked_record_factory(make: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        try:
            secrets = frozenset(_LOGGED_SECRETS)
            message = record.getMessage()
            if (masked := mask(message, secrets)) != message:
                record.msg, record.args = masked, None
            if record.exc_info and not record.exc_text:
                text = logging.Formatter().formatException(record.exc_info)
                if (masked := mask(text, secrets)) != text:
                    record.exc_text = masked  # what a Formatter prints instead of formatting it again
        except Exception:  # a record that cannot be formatted: logging reports that itself
            pass
        return record

    factory.npi_masks_secrets = True  # type: ignore[attr-defined]
    return factory


def guard_logs(channels: Iterable[Channel]) -> None:
    """From now on, no log record of this process holds a secret of ``channels``, whichever
    handler writes it (Scrapy installs its own when the crawl starts, after the channels are
    loaded): every record is masked when it is made. urllib3, which logs each request line with
    its path (``POST /hook/TOKEN``: Slack and Discord tokens are path segments), is kept at INFO."""
    for channel in channels:
        _LOGGED_SECRETS.update(channel.secrets)
    current = logging.getLogRecordFactory()
    if not getattr(current, "npi_masks_secrets", False):
        logging.setLogRecordFactory(_masked_record_factory(current))
    urllib3 = logging.getLogger("urllib3")
    if urllib3.level < logging.INFO:  # its own level: Scrapy later opens the root to everything
        urllib3.setLevel(logging.INFO)


def _from_urls(urls: Iterable[str]) -> list[Channel]:
    channels: list[Channel] = []
    for n, url in enumerate(u.strip() for u in urls if u.strip()):
        one = apprise.Apprise()
        with apprise_log(logging.ERROR):
            added = one.add(url)
        if not added:
            raise ChannelError(f"--notify #{n + 1} ({redact(url)}) is not a valid Apprise URL; {SERVICES_HELP}")
        channels += [_channel(s) for s in one.find()]
    return channels


MAX_CONFIG_BYTES = 1_000_000  # an Apprise config file is a few dozen lines
# The top-level keys of an Apprise YAML config, and the keys every entry may have besides its
# service's own settings (apprise/config/base.py, config_parse_yaml).
YAML_KEYS = ("version", "asset", "tag", "tags", "groups", "include", "urls", "template")
ENTRY_KEYS = frozenset({"tag", "tags", "schema"})
_SCHEMA = re.compile(r"\s*([a-z0-9]{1,32})://", re.I)


def _from_config(config: str) -> list[Channel]:
    """Every entry of an Apprise config file (YAML or TEXT): all must load, or none is used. The
    file is read by the one reader of user files (a regular file, size-capped, UTF-8 with or
    without a BOM); a YAML key Apprise would ignore is refused like a typo in a URL."""
    text = read_text(config, what="--config", error=ChannelError, max_bytes=MAX_CONFIG_BYTES)
    kind = apprise.ConfigBase.detect_config_format(text)
    if kind is None:
        raise ChannelError(f"--config {config} cannot be read as an Apprise config file (YAML or TEXT format, see docs/alerts.md)")
    secrets: frozenset[str] = frozenset()
    if kind == apprise.ConfigFormat.YAML:
        document = _parse_yaml(config, text)
        check_yaml_keys(config, document)
        secrets = frozenset(v for v in _scalars(document) if len(v) >= 3)  # passwords written as keys' values
    loader = apprise.AppriseConfig()
    if not loader.add_config(text, format=kind):
        raise ChannelError(f"--config {config} cannot be read as an Apprise config file")
    loaded = apprise.Apprise()
    loaded.add(loader)
    with apprise_log(logging.DEBUG) as records:
        servers = list(loaded.find())
    # Apprise logs an entry it drops (a bad URL, an entry that is no URL, an ignored asset key)
    # as a warning or an error and goes on without it: either is refused here.
    errors = [r.getMessage() for r in records if r.levelno >= logging.WARNING]
    if errors:
        text = " ".join(r.getMessage() for r in records)
        lines = sorted({int(n) for n in re.findall(r"on line (\d+)", text)})
        entries = sorted({int(n) for n in re.findall(r"(?:entry|URL) #(\d+)", text)})
        where = (
            f"line {', '.join(map(str, lines))}"
            if lines
            else f"entry {', '.join(map(str, entries))}" if entries else "an entry"
        )
        raise ChannelError(
            f"--config {config}: {where} is not a valid Apprise URL ({scrub(errors[0], secrets)}); "
            f"every entry must load: fix or remove it ({SERVICES_HELP})"
        )
    if not servers:
        raise ChannelError(f"--config {config} holds no valid Apprise URL (YAML or TEXT format, see docs/alerts.md)")
    return [_channel(s) for s in servers]


def _parse_yaml(config: str, text: str) -> Any:
    import yaml  # Apprise's own YAML parser (a dependency of Apprise)

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # Its problem and place only: the snippet PyYAML quotes may hold a secret of the file.
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ChannelError(f"--config {config} is not valid YAML ({getattr(exc, 'problem', None) or 'unreadable'}{where})") from None
    except RecursionError:
        raise ChannelError(f"--config {config} nests lists or mappings too deeply (hundreds of levels); is it the right file?") from None


def _scalars(node: Any) -> Iterator[str]:
    """Every text value of a parsed YAML document (not its keys), at any depth."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack += item.values()
        elif isinstance(item, list):
            stack += item
        elif isinstance(item, (str, int, float)) and not isinstance(item, bool):
            yield str(item)


def check_yaml_keys(config: str, document: Any) -> None:
    """Refuse a key of an Apprise YAML config that Apprise would silently ignore: ``tga: admin``
    left the channel untagged, so it received every alert. One line naming the file, the entry
    and the key (and the nearest known key)."""
    if not isinstance(document, dict):
        return  # Apprise says what is wrong with it
    _refuse_unknown(config, "the top level", document, _Keys(frozenset(YAML_KEYS)))
    urls = document.get("urls")
    for n, entry in enumerate(urls if isinstance(urls, list) else [], 1):
        if not isinstance(entry, dict):
            continue
        url_key = next((k for k in entry if isinstance(k, str) and _SCHEMA.match(k)), None)
        scheme = _SCHEMA.match(url_key) if url_key else None
        known = _entry_keys(scheme[1].lower()) if scheme else None
        if url_key is None or known is None:
            continue  # no URL, or an unknown service: Apprise refuses the entry itself
        children = entry[url_key]
        settings = [{k: v for k, v in entry.items() if k != url_key}]
        settings += children if isinstance(children, list) else [children]
        for mapping in settings:
            if isinstance(mapping, dict):
                _refuse_unknown(config, f"entry {n} ({redact(url_key)})", mapping, known)


@dataclass(frozen=True)
class _Keys:
    """The keys a YAML mapping may have: these names, or a name behind one of these prefixes
    (a service's extras, such as ``+X-Header`` for an HTTP header)."""

    names: frozenset[str]
    prefixes: tuple[str, ...] = ()

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        return key in self.names or any(key.startswith(p) and len(key) > len(p) for p in self.prefixes)


def _refuse_unknown(config: str, where: str, mapping: dict, known: _Keys) -> None:
    import difflib

    for key in mapping:
        if key in known:
            continue
        near = difflib.get_close_matches(str(key), sorted(known.names), n=1)
        hint = f" (did you mean '{near[0]}'?)" if near else ""
        raise ChannelError(
            f"--config {config}: {where} has an unknown key '{key}'{hint}; Apprise would ignore it "
            "(a misspelt tag leaves a channel untagged: it gets every alert); see docs/alerts.md"
        )


@functools.cache
def _entry_keys(schema: str) -> _Keys | None:
    """The keys of a YAML entry of ``schema``'s service: its URL tokens and arguments, their
    prefixed extras, tag/tags; None for a service Apprise does not know."""
    from apprise import plugins
    from apprise.url import URL_TOKEN_ALIASES

    managers = apprise.NotificationManager()
    if schema not in managers:
        return None
    details = plugins.details(managers[schema])
    names = ENTRY_KEYS | set(URL_TOKEN_ALIASES) | set(details["tokens"]) | set(details["args"]) | set(details["kwargs"])
    return _Keys(frozenset(names), tuple(meta.get("prefix", "+") for meta in details["kwargs"].values()))


def load_channels(urls: Iterable[str] = (), config: str | None = None) -> list[Channel]:
    """Every channel of ``urls`` and of the Apprise ``config`` file, validated now; from now on
    their secrets are masked in every log record of this process (``guard_logs``)."""
    channels = _from_urls(urls) + (_from_config(config) if config else [])
    guard_logs(channels)
    return list({c.fingerprint: c for c in channels}.values())


def bind(channels: Iterable[Channel], key: bytes) -> list[Channel]:
    """``channels`` with their ids under ``key``, an archive's channel key."""
    return [replace(c, key=key) for c in channels]


def targets(alert: dict[str, Any], channels: list[Channel]) -> list[Channel]:
    tags = alert["tags"].split(",") if isinstance(alert.get("tags"), str) else alert.get("tags") or []
    found = [c for c in channels if c.matches([t for t in tags if t])]
    if not found and alert["kind"] == "attention":
        return list(channels)  # nobody has the admin tag: better everyone than no one
    return found


def send(channel: Channel, title: str, body: str) -> tuple[bool | None, str]:
    """One message to one channel: (delivered, why not). Apprise does not retry and answers
    only True/False; the reason of a failure is its last logged warning, scrubbed. None instead
    of False: the request was sent and no answer came within the read timeout, so the message
    may have arrived (an unknown outcome, never re-sent by itself)."""
    with apprise_log(logging.DEBUG) as records:
        try:
            ok = bool(channel.server.notify(body=body, title=title))
            reasons = [r.getMessage() for r in records if r.levelno >= logging.WARNING]
        except Exception as exc:  # a plugin bug must not lose the outbox's bookkeeping
            ok, reasons = False, [f"{type(exc).__name__}: {exc}"]
    if ok:
        return True, ""
    if any(_UNANSWERED.search(r.getMessage()) for r in records):
        seconds = f"{channel.server.socket_read_timeout:g}"
        return None, f"sent, but no answer within {seconds} s: it may have arrived"
    return False, scrub((reasons or ["delivery failed"])[-1], channel.secrets)
