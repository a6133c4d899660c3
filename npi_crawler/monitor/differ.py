"""The differ: facts in the archive that no event records yet become events, and alerts in the outbox.

Plain functions over the archive, outside Scrapy: they run the same after ``npi-crawler watch``,
after ``npi-crawler crawl`` or after a Scrapyd job. One diff is ONE transaction that writes the
events, the outbox rows and the ``runs.diffed_at`` marker together, so a process killed anywhere
leaves either all of them or none: the next diff redoes exactly what is missing, never twice
(a unique index makes each fact an event once).

- ``new``: an article with no ``new`` event (sections are read from ``article_sections`` at diff
  time, so memberships stored as separate listing items are all counted).
- ``changed``: a row of ``revisions`` with no event (title, date, body, PDFs or authors changed).
- ``removed``: an article whose own page answered 404/410 (``removed_at``) with no event for it.

Alerts go to the outbox only for events in a watched scope (a language and a section) that was
already watched before this diff: the first diff that watches a scope is its baseline and sends
nothing, so neither a first run nor widening ``--section`` later floods anyone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from npi_crawler.archive import Archive, utcnow
from npi_crawler.constants import DEFAULT_BASE_URL, LANGS
from npi_crawler.monitor import messages

TITLE_NOTES = ("fallback/title_og", "fallback/title_tag", "miss/title")
DATE_NOTES = ("fallback/date_url", "fallback/date_any", "miss/date")
BODY_NOTES = ("fallback/body_main", "fallback/body_extractor", "miss/body")
NOMATCH_STAT = "npi/parse/nomatch/"  # + a [selectors] key: no selector of it matched on a page


@dataclass(frozen=True)
class Scope:
    """What the watcher cares about: these sections, in these languages."""

    sections: tuple[str, ...] = ("policy",)
    langs: tuple[str, ...] = LANGS

    def pairs(self) -> list[tuple[str, str]]:
        return [(lang, section) for lang in self.langs for section in self.sections]


@dataclass
class DiffOptions:
    scope: Scope = field(default_factory=Scope)
    send_latest: int = 0  # on a baseline, still alert the latest K articles (a test message)
    alert_changes: bool = False
    alert_removals: bool = False
    admin_tag: str = "admin"
    layout_min_pages: int = 3  # article pages a run needs before their share of misses counts
    flood_limit: int = 25  # more article alerts than this in one diff become one summary message
    dry_run: bool = False  # do everything, then roll back


@dataclass
class DiffResult:
    runs: list[int] = field(default_factory=list)
    new: int = 0
    changed: int = 0
    removed: int = 0
    alerts: list[dict[str, Any]] = field(default_factory=list)  # outbox rows this diff created
    baseline_scopes: list[tuple[str, str]] = field(default_factory=list)
    baseline_articles: int = 0  # live articles in the newly watched scopes
    archived: int = 0  # live articles in the whole archive
    test_alerts: int = 0  # --send-latest: baseline articles alerted anyway, as a test
    watched_scopes: int = 0
    layout_problems: list[str] = field(default_factory=list)
    flood: int = 0  # article alerts folded into one summary (over the flood limit)

    @property
    def baseline(self) -> bool:
        """Every watched scope was new: the first watch of this archive."""
        return bool(self.baseline_scopes) and len(self.baseline_scopes) == self.watched_scopes


# (event id, kind, article as alert_article() returns it)
Event = tuple[int, str, dict[str, Any]]


class _Rollback(Exception):
    pass


def layout_problem(run: dict[str, Any], min_pages: int = 3) -> str | None:
    """One line saying why this run's pages look like a changed site layout, or None.

    A list page without entries is enough; for article pages, more than half of them (at least
    ``min_pages`` pages) lacking a title, a date or a body from the documented selectors. The
    line names the [selectors] keys that matched nothing (stats ``npi/parse/nomatch/<key>``) and
    the ``probe`` command that shows them on one of the site's pages.
    """
    if run.get("status") == "failed":  # nothing was fetched: the site is down, not redesigned
        return None
    stats = json.loads(run.get("stats") or "{}")
    empty = int(stats.get("npi/parse/miss/list_entries", 0))
    pages = int(stats.get("npi/article/pages", 0))
    bad = max(sum(int(stats.get(f"npi/parse/{k}", 0)) for k in notes) for notes in (TITLE_NOTES, DATE_NOTES, BODY_NOTES))
    if empty:
        problem = f"run {run['id']}: {empty} list page(s) had no entries"
    elif pages >= min_pages and bad * 2 > pages:
        problem = f"run {run['id']}: {bad} of {pages} article pages had no title, date or body where expected"
    else:
        return None
    missed = sorted(
        ((k.removeprefix(NOMATCH_STAT), int(n)) for k, n in stats.items() if k.startswith(NOMATCH_STAT) and n),
        key=lambda kn: -kn[1],
    )
    if missed:
        problem += "; selectors that matched nothing: " + ", ".join(f"{key} ({n} pages)" for key, n in missed)
    return f"{problem}; see them with npi-crawler probe {_list_url(run)}"


def _list_url(run: dict[str, Any]) -> str:
    """A list page of the run's scope: where ``probe`` shows the list selectors, and articles to try."""
    base = (run.get("base_url") or DEFAULT_BASE_URL).rstrip("/") + "/"
    lang = next((lang for lang in (run.get("langs") or "").split(",") if lang), "ja")
    section = next((s for s in (run.get("sections") or "").split(",") if s), "policy")
    return f"{base}{'en/' if lang == 'en' else ''}research/{section}/index.html"


def diff(archive: Archive, options: DiffOptions | None = None, now: str | None = None) -> DiffResult:
    """Record every fact not yet an event, enqueue the alerts they call for, mark the runs diffed.

    All in one transaction (rolled back at the end with ``options.dry_run``).
    """
    options = options or DiffOptions()
    result = DiffResult(watched_scopes=len(options.scope.pairs()))
    try:
        with archive.atomic():
            _diff(archive, options, now or utcnow(), result)
            if options.dry_run:
                raise _Rollback
    except _Rollback:
        pass
    return result


def _diff(archive: Archive, options: DiffOptions, now: str, result: DiffResult) -> None:
    runs = archive.runs_to_diff()
    result.runs = [r["id"] for r in runs]
    latest_run = result.runs[-1] if result.runs else None
    result.layout_problems = [p for r in runs if (p := layout_problem(r, options.layout_min_pages))]
    held = bool(result.layout_problems)
    events = _record_events(archive, now, latest_run, busy=archive.busy_run(result.runs), held=held)
    result.new, result.changed, result.removed = (sum(1 for e in events if e[1] == k) for k in ("new", "changed", "removed"))
    watched = _baselines(archive, options.scope, now, result, held)
    if not held:
        _enqueue_articles(archive, events, watched, options, now, latest_run, result)
        if options.send_latest and result.baseline_scopes:
            _send_latest(archive, now, latest_run, options, result)
    elif archive.last_diff_outcome() != "layout_break":
        # The layout alarm: one attention message per episode (not again while it lasts).
        message = messages.format_attention(result.layout_problems, options.admin_tag)
        result.alerts.append(archive.enqueue_alert(now, latest_run, None, "attention", message))
    if result.runs:
        outcome = "layout_break" if held else ("baseline" if result.baseline else "ok")
        archive.mark_diffed(result.runs, now, outcome)


def _record_events(archive: Archive, now: str, latest_run: int | None, *, busy: int, held: bool) -> list[Event]:
    """Facts without events become events. A crawl still running (``busy``) keeps its articles
    for the next diff (their listings may still come); an alarmed run records no removal."""
    events: list[Event] = []
    for url in archive.unrecorded_new(busy):
        article = archive.alert_article(url)
        events.append((archive.record_event(now, "new", article["first_run_id"], article), "new", article))
    for revision_id, url, run_id in archive.unrecorded_revisions(busy):
        article = archive.alert_article(url)
        event_id = archive.record_event(now, "changed", run_id, article, revision_id=revision_id)
        events.append((event_id, "changed", article))
    if not held:
        for url, removed_at in archive.unrecorded_removals():
            article = archive.alert_article(url)
            event_id = archive.record_event(now, "removed", latest_run, article, removed_at=removed_at)
            events.append((event_id, "removed", article))
    return events


def _baselines(archive: Archive, scope: Scope, now: str, result: DiffResult, held: bool) -> set[tuple[str, str]]:
    """Scopes watched for the first time get this diff as their baseline (no alerts for what is
    already archived); returns the scopes watched before it, the ones that alert."""
    watched = archive.watched_scopes() & set(scope.pairs())
    # A baseline needs something to stand on: not a crawl that reached nothing, not garbage.
    if archive.has_crawled() and not held:
        for lang, section in scope.pairs():
            if (lang, section) not in watched:
                archive.add_watched_scope(lang, section, now)
                result.baseline_scopes.append((lang, section))
    result.archived = archive.live_count()
    if result.baseline_scopes:
        result.baseline_articles = archive.scope_count(result.baseline_scopes)
    return watched


def _enqueue_articles(
    archive: Archive,
    events: list[Event],
    watched: set[tuple[str, str]],
    options: DiffOptions,
    now: str,
    run_id: int | None,
    result: DiffResult,
) -> None:
    wanted = {"new": True, "changed": options.alert_changes, "removed": options.alert_removals}

    def in_watched(article: dict[str, Any]) -> list[str]:
        return [s for s in options.scope.sections if s in article["sections"] and (article["lang"], s) in watched]

    queued = [
        (event_id, kind, messages.format_article(a, kind, in_watched(a)))
        for event_id, kind, a in events
        if wanted[kind] and in_watched(a)
    ]
    if options.flood_limit and len(queued) > options.flood_limit:
        # Far more at once than a think tank publishes (URLs changed, lists reorganised): one
        # summary instead of a flood; the events are all recorded.
        flood = messages.format_flood([m for _e, _k, m in queued], options.flood_limit)
        result.alerts.append(archive.enqueue_alert(now, run_id, None, "flood", flood))
        result.flood = len(queued)
        archive.mark_alerted([e for e, _k, _m in queued])
        return
    for event_id, kind, message in queued:
        result.alerts.append(archive.enqueue_alert(now, run_id, event_id, kind, message))


def _send_latest(archive: Archive, now: str, run_id: int | None, options: DiffOptions, result: DiffResult) -> None:
    """The latest K articles of the newly watched scopes, as a test of the channels."""
    for url in archive.latest_unalerted(result.baseline_scopes, options.send_latest):
        article = archive.alert_article(url)
        sections = [s for s in options.scope.sections if s in article["sections"]]
        message = messages.format_article(article, "new", sections)
        result.alerts.append(archive.enqueue_alert(now, run_id, archive.new_event_id(url), "new", message))
        result.test_alerts += 1
