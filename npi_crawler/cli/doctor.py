"""``npi-crawler doctor``'s checks (the command is in cli/ops.py): plain functions returning ``Check`` lines.

Settings file, the archive (opens, ``PRAGMA integrity_check``, migrations, file permissions, the
latest run's health), the site (robots.txt and one list page), and every notification channel (a
test message through Apprise). Nothing here writes to the archive: it is opened read-only, and
missing migrations are reported, not applied.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

from npi_crawler.archive import MIGRATIONS, Archive, integrity_check
from npi_crawler.constants import DEFAULT_CONTACT
from npi_crawler.monitor.health import run_health
from npi_crawler.site.urls import list_url
from npi_crawler.userfile import not_regular

SITE_TIMEOUT = 15.0


def one_line(message: str) -> str:
    """SQLite's check messages span lines and name the schema: fold them into one short line."""
    return " ".join(message.replace("*** in database main ***", "").split())[:300]


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    warn: bool = False  # passes (exit 0) but wants a change: printed WARN
    info: bool = False  # nothing to check here, and nothing wrong with that: printed info

    def line(self) -> str:
        status = "FAIL" if not self.ok else ("WARN" if self.warn else "info" if self.info else "ok  ")
        return f"{status}  {self.name:<13} {self.detail}"


def check_contact(contact: str, user_agent: str) -> Check:
    """Does the User-Agent tell the site's operators who runs this crawler?"""
    if contact == DEFAULT_CONTACT and DEFAULT_CONTACT in user_agent:
        return Check(
            "contact",
            True,
            f"the User-Agent names the placeholder {DEFAULT_CONTACT}; set contact = \"you@example.org\" "
            "(or a URL) in the settings file, or NPI_CONTACT, so the site can reach whoever runs it",
            warn=True,
        )
    return Check("contact", True, f"User-Agent: {user_agent}")


# -- the archive ----------------------------------------------------------------------------------


def _check_permissions(path: Path) -> Check:
    mode = stat.S_IMODE(path.stat().st_mode)
    if not os.access(path, os.R_OK | os.W_OK):
        return Check("permissions", False, f"{path} is not readable and writable by this user")
    if not os.access(path.parent, os.W_OK):
        return Check("permissions", False, f"{path.parent} is not writable (SQLite's WAL and the run lock need it)")
    if mode & 0o077:
        return Check("permissions", False, f"{path} is mode {mode:04o}; make it 0600 (chmod 600 {path})")
    return Check("permissions", True, f"{path} mode {mode:04o}, folder writable")


def _check_run_lock(db_path: str) -> Check:
    """The lock file beside the archive opens for writing, as every run needs (a lock left by
    another user, e.g. a run by hand as root, made every scheduled run fail while doctor said ok)."""
    from npi_crawler.archive.runlock import lock_holder, lock_path, lock_problem

    problem = lock_problem(db_path)
    if problem:
        return Check("run lock", False, problem)
    holder = lock_holder(db_path)
    return Check("run lock", True, f"{lock_path(db_path)}: " + (f"held now ({holder})" if holder else "free"))


def check_archive(db_path: str) -> list[Check]:
    """The archive file: present, readable and writable by its owner only, a sound SQLite file,
    every migration of this version applied, and the latest run healthy."""
    path = Path(db_path)
    if not path.exists():
        return [Check("archive", False, f"{db_path} does not exist; run 'npi-crawler crawl --db {db_path}'")]
    if kind := not_regular(path):  # a FIFO would hang the integrity check
        return [Check("archive", False, f"{db_path} is {kind}, not a file; give --db the archive file")]
    checks = [_check_permissions(path), _check_run_lock(db_path)]
    try:
        # Read-only: doctor must not change the file it examines (nor apply migrations).
        rows = integrity_check(path)
    except sqlite3.DatabaseError as exc:
        checks.append(Check("integrity", False, f"{db_path} is not a readable SQLite database ({exc})"))
        return checks
    if rows != ["ok"]:
        first = one_line(rows[0]) if rows else "no answer"
        more = f" (+{len(rows) - 1} more)" if len(rows) > 1 else ""
        checks.append(Check("integrity", False, f"{first}{more}; restore a backup (see docs/operations.md)"))
        return checks
    checks.append(Check("integrity", True, "PRAGMA integrity_check: ok"))
    try:
        archive = Archive.open(db_path, readonly=True, migrate=False)
    except Exception as exc:  # ArchiveError, or a DatabaseError of a damaged file
        checks.append(Check("schema", False, str(exc)))
        return checks
    with archive:
        checks.append(_check_schema(archive, db_path))
        if checks[-1].ok:
            checks.append(_check_last_run(archive))
    return checks


def _check_schema(archive: Archive, db_path: str) -> Check:
    if "articles" not in archive.db.table_names():
        return Check("schema", False, f"{db_path} is not an npi-crawler archive")
    applied = archive.applied_migrations()
    known = [name for name, _ in MIGRATIONS]
    missing = [n for n in known if n not in applied]
    unknown = [n for n in applied if n not in known]
    if unknown:
        return Check(
            "schema", False, f"made by a newer npi-crawler (steps {', '.join(unknown)} unknown here); upgrade npi-crawler"
        )
    if missing:
        return Check("schema", True, f"{len(applied)}/{len(known)} steps; the next run applies {', '.join(missing)}")
    return Check("schema", True, f"{len(applied)}/{len(known)} migration steps applied")


def _check_last_run(archive: Archive) -> Check:
    health = run_health(archive)
    last = health.last_run
    if not health.ok or last is None:
        return Check("last run", False, "; ".join(health.problems))
    detail = f"run {last['id']} ({last['mode']}) {last['status']}, started {last['started']}"
    if health.running:
        detail += f"; running now: {health.running}"
    return Check("last run", True, detail)


# -- the site -------------------------------------------------------------------------------------


def _get(url: str, user_agent: str, timeout: float) -> tuple[int | None, str]:
    request = urllib.request.Request(url, headers={"User-Agent": user_agent})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read(2_000_000)
            return response.status, "ok"
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, str(reason) or type(exc).__name__


def check_site(
    base_url: str,
    *,
    user_agent: str,
    lang: str = "en",
    section: str = "policy",
    timeout: float = SITE_TIMEOUT,
) -> list[Check]:
    """robots.txt and one list page answer (a single request each, no retries)."""
    checks = []
    robots = urljoin(base_url, "/robots.txt")
    status, detail = _get(robots, user_agent, timeout)
    # 404 is a valid answer: no robots.txt means everything is allowed.
    checks.append(Check("site robots", status in (200, 404), f"{robots}: {detail}"))
    page = list_url(base_url, lang, section)
    status, detail = _get(page, user_agent, timeout)
    checks.append(Check("site list", status == 200, f"{page}: {detail}"))
    return checks


# -- notifications --------------------------------------------------------------------------------


NO_CHANNEL = "no channel configured (--notify, --config, [notify] urls, NPI_NOTIFY_URLS, NPI_APPRISE_CONFIG)"


def check_notifications(channels: list, *, body: str, watched: str | None = None) -> list[Check]:
    """Send a test notification to each channel ``watch`` would use (monitor.channels loads and
    redacts them), one line each, told apart by its tags; never print a secret. No channel is a
    failed check only when something says a watch is meant (``watched``: what says so); for a
    researcher's archive, crawled and searched, it is a plain info line."""
    if not channels:
        if watched:
            return [Check("notify", False, f"{NO_CHANNEL}, but {watched}: watch would keep its alerts in the outbox")]
        return [Check("notify", True, f"{NO_CHANNEL}: none needed unless you watch (docs/alerts.md)", info=True)]
    from npi_crawler.monitor.channels import send

    names = [c.name for c in channels]
    checks = []
    for n, channel in enumerate(channels):
        ok, error = send(channel, "npi-crawler doctor: test notification", body)
        detail = "test notification delivered" if ok else error  # None: sent, no answer in time
        # Two channels with one host and the same tags: their order in the configuration tells them apart.
        same = [i for i, name in enumerate(names) if name == channel.name]
        where = f" #{same.index(n) + 1}" if len(same) > 1 else ""
        checks.append(Check("notify", bool(ok), f"{channel.name}{where}: {detail}"))
    return checks


def archive_facts(db_path: str) -> tuple[str | None, dict[str, int]]:
    """The site the archive's last run crawled, and its alerts by status; (None, {}) for an
    archive doctor cannot read (its own checks say why)."""
    path = Path(db_path)
    try:
        if not path.exists() or not_regular(path):
            return None, {}
        with Archive.open(db_path, readonly=True, migrate=False) as archive:
            last = archive.last_run()
            totals = archive.alert_totals() if "alerts" in archive.db.table_names() else {}
    except Exception:  # a damaged or foreign file: check_archive reports it
        return None, {}
    return (last or {}).get("base_url"), totals


def watch_reason(settings_watch: str | None, totals: dict[str, int]) -> str | None:
    """What says a watch is meant here, in words, or None: the settings file configures one, or
    the archive's outbox has alerts (waiting for a channel, or sent to one before)."""
    if settings_watch:
        return settings_watch
    if totals.get("pending"):
        return f"{totals['pending']} alert(s) wait in this archive's outbox"
    if totals.get("sent"):
        return "this archive's alerts went to a channel before (is NPI_NOTIFY_URLS in this environment?)"
    return None
