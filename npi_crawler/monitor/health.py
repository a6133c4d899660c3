"""Is the archive's monitoring healthy? Plain checks over the archive, for ``doctor`` and ``status``.

``run_health(archive)`` looks at the latest run: failed (and why), partial in a way a person must
see to (WARC records lost), interrupted (stopped by a signal), killed
or left ``running`` by a process that is gone, stuck (``running`` for longer than ``stuck_after`` while its process still holds the
run lock), or too old. Each problem is one line; no problem means healthy. ``npi-crawler doctor``
prints them, and ``npi-crawler status`` exits 3 (needs attention) when there are any.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from npi_crawler.archive import Archive
from npi_crawler.archive.db import parse_stamp
from npi_crawler.archive.runlock import lock_holder

STUCK_AFTER = dt.timedelta(hours=6)
# A run that started later than this after "now" was recorded by a clock that is (or was) wrong.
CLOCK_SLACK = dt.timedelta(minutes=1)


@dataclass
class Health:
    last_run: dict[str, Any] | None
    problems: list[str] = field(default_factory=list)
    running: str | None = None  # who holds the run lock now, if anyone

    @property
    def ok(self) -> bool:
        return not self.problems


def _age(delta: dt.timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def run_health(
    archive: Archive,
    *,
    now: dt.datetime | None = None,
    stuck_after: dt.timedelta = STUCK_AFTER,
    max_age: dt.timedelta | None = None,
) -> Health:
    """The health of the latest run of ``archive``.

    ``max_age``: when given, a latest run that started longer ago than this is a problem too
    (the schedule stopped).
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    last = archive.last_run()
    holder = lock_holder(archive.path) if archive.path != ":memory:" else None
    health = Health(last_run=last, running=holder)
    if last is None:
        health.problems.append("no run recorded yet; run 'npi-crawler crawl' (or watch) once")
        return health
    started = parse_stamp(last["started"])
    label = f"run {last['id']} ({last['mode']}, started {last['started']})"
    if started and started - now > CLOCK_SLACK:
        # The clock was set back (or was ahead then): every age below would be negative.
        health.problems.append(
            f"{label} started {_age(started - now)} in the future of this machine's clock "
            f"({now.strftime('%Y-%m-%dT%H:%M:%SZ')}); check the clock (timedatectl), then the runs' times"
        )
    if last["status"] == "failed":
        health.problems.append(f"{label} failed: {last.get('problem') or 'no list page answered'}; see its run_errors")
    elif last["status"] == "partial" and last.get("problem"):
        health.problems.append(f"{label} is partial: {last['problem']}")
    elif last["status"] == "interrupted":
        health.problems.append(
            f"{label} was interrupted (stopped by a signal); the next run walks every list page again"
        )
    elif last["status"] == "killed":
        health.problems.append(
            f"{label} was killed (its process ended without finishing); the next run walked or walks every list page"
        )
    elif last["status"] == "running":
        if holder is None:
            health.problems.append(
                f"{label} did not finish (its process is gone: killed or crashed); the next run "
                "walks every list page again"
            )
        elif started and now - started > stuck_after:
            health.problems.append(f"{label} is stuck: still running after {_age(now - started)} ({holder})")
    if max_age is not None and started and now - started > max_age and last["status"] != "running":
        health.problems.append(f"the latest run started {_age(now - started)} ago; is the schedule running?")
    return health
