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
- ``joined``: an article listed in a section after its ``new`` event (one per article and section).

Alerts go to the outbox only for events in a watched scope (a language and a section) that was
already watched before this diff, or for new articles that a watcher rule matches (title, body or
the text of its PDFs, as archived when the diff runs), the rule being known before this diff: the
first diff that watches a scope or knows a rule is its baseline and sends nothing for it, so
neither a first run, nor widening ``--section``, nor a new rule floods anyone. One alert per
article carries the tags of the policy (where it applies) and of every rule it matches.

A diff whose runs tripped the layout alarm holds the alerts it would have queued
(``events.held_at``); the first healthy diff after it releases them, read again from the archive
(the crawl re-fetched the held articles that came through parser fallbacks), each once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from npi_crawler.archive import Archive, ParseHealth, utcnow
from npi_crawler.monitor import changes, messages
from npi_crawler.rules.matching import Match, MatchIndex, match_rules
from npi_crawler.rules.model import Rule
from npi_crawler.site import DEFAULT_BASE_URL, LANGS
from npi_crawler.site.notes import BODY_NOTES, DATE_NOTES, DEGRADED, MISS_LIST_ENTRIES, NOMATCH, TITLE_NOTES
from npi_crawler.site.urls import list_url


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
    rules: tuple[Rule, ...] = ()  # watcher rules; their tags route what they match


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
    joined: int = 0
    baseline_rules: list[str] = field(default_factory=list)  # rules known from this diff on
    held: int = 0  # alerts held by this diff (layout alarm)
    released: int = 0  # held events this diff released (alerted when they still call for it)

    @property
    def baseline(self) -> bool:
        """Every watched scope was new: the first watch of this archive."""
        return bool(self.baseline_scopes) and len(self.baseline_scopes) == self.watched_scopes


# (event id, kind, article as alert_article() returns it)
Event = tuple[int, str, dict[str, Any]]


class _Rollback(Exception):
    pass


def layout_problem(run: dict[str, Any], health: ParseHealth, min_pages: int = 3) -> str | None:
    """One line saying why this run's pages look like a changed site layout, or None.

    A list page without entries is enough; for article pages, more than half of them (at least
    ``min_pages`` pages) lacking a title, a date or a body from the documented selectors. The
    line names the [selectors] keys that matched nothing (notes ``nomatch/<key>`` of the run's
    ``ParseHealth``) and the ``probe`` command that shows them on one of the site's pages.
    """
    if run.get("status") == "failed":  # nothing was fetched: the site is down, not redesigned
        return None
    empty = health.pages_with([MISS_LIST_ENTRIES])
    pages = health.article_pages
    bad = max(health.pages_with(notes) for notes in (TITLE_NOTES, DATE_NOTES, BODY_NOTES))
    if empty:
        problem = f"run {run['id']}: {empty} list page(s) had no entries"
    elif pages >= min_pages and bad * 2 > pages:
        problem = f"run {run['id']}: {bad} of {pages} article pages had no title, date or body where expected"
    else:
        return None
    missed = sorted(health.with_prefix(NOMATCH).items(), key=lambda kn: -kn[1])
    if missed:
        problem += "; selectors that matched nothing: " + ", ".join(f"{key} ({n} pages)" for key, n in missed)
    return f"{problem}; see them with npi-crawler probe {_list_url(run)}"


def _list_url(run: dict[str, Any]) -> str:
    """A list page of the run's scope: where ``probe`` shows the list selectors, and articles to try."""
    base = (run.get("base_url") or DEFAULT_BASE_URL).rstrip("/") + "/"
    lang = next((lang for lang in (run.get("langs") or "").split(",") if lang), "ja")
    section = next((s for s in (run.get("sections") or "").split(",") if s), "policy")
    return list_url(base, lang, section)


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
    health = {r["id"]: archive.parse_health(r["id"]) for r in runs}
    result.layout_problems = [p for r in runs if (p := layout_problem(r, health[r["id"]], options.layout_min_pages))]
    held = bool(result.layout_problems)
    events = _record_events(archive, now, latest_run, busy=archive.busy_run(result.runs), held=held)
    for kind in ("new", "changed", "removed", "joined"):
        setattr(result, kind, sum(1 for e in events if e[1] == kind))
    watched = _baselines(archive, options.scope, now, result, held)
    rules = _rule_baselines(archive, options.rules, now, result, held)
    if held:
        planned = _plan(archive, events, watched, rules, options)
        archive.hold_events([event_id for event_id, _kind, _message in planned], now)
        result.held = len(planned)
        if archive.last_diff_outcome() != "layout_break":
            # The layout alarm: one attention message per episode (not again while it lasts).
            message = messages.format_attention(result.layout_problems, options.admin_tag)
            result.alerts.append(archive.enqueue_alert(now, latest_run, None, "attention", message))
    else:
        released = _released(archive, list(health.values()), options.layout_min_pages)
        result.released = len(released)
        _enqueue_articles(archive, events + released, watched, rules, options, now, latest_run, result)
        archive.release_held([event_id for event_id, _kind, _article in released], now)
        if options.send_latest and (result.baseline_scopes or result.baseline_rules):
            _send_latest(archive, now, latest_run, options, result)
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
    for url, section, run_id in archive.unrecorded_joins(busy):
        article = {**archive.alert_article(url), "section": section}
        events.append((archive.record_event(now, "joined", run_id, article, section=section), "joined", article))
    if not held:
        for url, removed_at in archive.unrecorded_removals():
            article = archive.alert_article(url)
            event_id = archive.record_event(now, "removed", latest_run, article, removed_at=removed_at)
            events.append((event_id, "removed", article))
    return events


def _released(archive: Archive, runs: list[ParseHealth], min_pages: int) -> list[Event]:
    """The held events a healthy diff releases, their articles read again now (clean titles):
    those whose article is now stored without parser fallbacks (the crawl fetched it again);
    all of them once a run fetched enough article pages to show the layout is right again (a
    page that always parses through a fallback is not held for ever). Nothing without a run."""
    proven = any(run.article_pages >= min_pages for run in runs)
    held = archive.held_events(degraded_notes=() if proven else DEGRADED) if runs else []
    events: list[Event] = []
    for event_id, kind, url, section in held:
        article = archive.alert_article(url)
        events.append((event_id, kind, {**article, "section": section} if section else article))
    return events


def _baselines(archive: Archive, scope: Scope, now: str, result: DiffResult, held: bool) -> set[tuple[str, str]]:
    """Scopes watched for the first time get this diff as their baseline (no alerts for what is
    already archived); returns the scopes watched before it, the ones that alert."""
    watched = archive.watched_scopes() & set(scope.pairs())
    # A baseline needs something to stand on: not a crawl that reached nothing, not garbage.
    if archive.has_crawled() and not held:
        covered = archive.baseline_run(result.runs)
        for lang, section in scope.pairs():
            if (lang, section) not in watched:
                archive.add_watched_scope(lang, section, now, covered)
                result.baseline_scopes.append((lang, section))
    result.archived = archive.live_count()
    if result.baseline_scopes:
        result.baseline_articles = archive.scope_count(result.baseline_scopes)
    return watched


def _rule_baselines(
    archive: Archive, rules: tuple[Rule, ...], now: str, result: DiffResult, held: bool
) -> list[Rule]:
    """Like scopes: a rule seen for the first time has this diff as its baseline (what it matches
    now is not sent); returns the rules known before this diff, the ones that alert."""
    known = archive.watched_rules()
    if archive.has_crawled() and not held:
        covered = archive.baseline_run(result.runs)
        for rule in rules:
            if rule.name not in known:
                archive.add_watched_rule(rule.name, now, covered)
                result.baseline_rules.append(rule.name)
    return [rule for rule in rules if rule.name in known]


# (event id, kind, message as messages.format_article makes it)
Planned = tuple[int, str, dict[str, Any]]


def _plan(
    archive: Archive, events: list[Event], watched: set[tuple[str, str]], rules: list[Rule], options: DiffOptions
) -> list[Planned]:
    """The article alerts ``events`` call for: one per event at most, and an article announced
    as new is not alerted as changed in the same batch (its first alert shows it as it is now).
    Which channel gets an article once is the outbox's unique index, not the plan's."""
    wanted = {"new": True, "joined": True, "changed": options.alert_changes, "removed": options.alert_removals}
    announced = {a["url"] for _e, kind, a in events if kind == "new"}
    new_urls = [a["url"] for _e, kind, a in events if kind == "new"]
    matches = match_rules(archive.rule_documents(new_urls), rules) if rules and new_urls else {}
    # Listed when a scope or rule took its baseline, archived only now (its page failed then):
    # part of that baseline, so not news for it.
    baseline = archive.baseline_listings(new_urls) if new_urls else {}
    tags_of = {rule.name: rule.tags for rule in rules}
    planned = []
    for event_id, kind, article in events:
        if not wanted[kind] or (kind == "changed" and article["url"] in announced):
            continue
        found = matches.get(article["url"], []) if kind == "new" else []
        scopes = watched
        if kind == "new" and article["url"] in baseline:
            sections, known = baseline[article["url"]]
            scopes = watched - {(article["lang"], section) for section in sections}
            found = [match for match in found if match.rule not in known]
        article = _details(archive, event_id, kind, article)
        if message := _article_message(kind, article, scopes, options.scope, found, tags_of, archive.path):
            planned.append((event_id, kind, message))
    return planned


def _details(archive: Archive, event_id: int, kind: str, article: dict[str, Any]) -> dict[str, Any]:
    """What an alert about an edit or a removal shows besides the article: what the edit changed
    and when the version before it was last served; the removed article's last version."""
    if kind == "changed" and (versions := archive.edit_versions(event_id)):
        old, new = ({k: v for k, v in version.items() if k != "content_hash"} for version in versions)
        served = archive.last_served(article["url"], versions[0]["content_hash"])
        return {**article, "change": changes.compare(changes.Text(**old), changes.Text(**new)), "before_served": served}
    if kind == "removed":
        return {**article, "last_version": archive.last_version(article["url"])}
    return article


def _article_message(
    kind: str,
    article: dict[str, Any],
    watched: set[tuple[str, str]],
    scope: Scope,
    matches: list[Match],
    tags_of: dict[str, tuple[str, ...]],
    db: str | None = None,
) -> dict[str, Any] | None:
    """The alert for one event, or None when neither a watched section nor a rule calls for it.
    The policy's tags (``all``, language, sections) only where a watched section applies."""
    lang = article["lang"]
    if kind == "joined":
        section = article["section"]
        if section not in scope.sections or (lang, section) not in watched:
            return None
        return messages.format_article(article, kind, [section], tags=messages.alert_tags(lang, [section]), db=db)
    sections = [s for s in scope.sections if s in article["sections"] and (lang, s) in watched]
    if not sections and not matches:
        return None
    tags = messages.alert_tags(lang, article["sections"]) if sections else []
    tags += [tag for match in matches for tag in tags_of.get(match.rule, ())]
    return messages.format_article(article, kind, sections, matches, list(dict.fromkeys(tags)), db=db)


def _enqueue_articles(
    archive: Archive,
    events: list[Event],
    watched: set[tuple[str, str]],
    rules: list[Rule],
    options: DiffOptions,
    now: str,
    run_id: int | None,
    result: DiffResult,
) -> None:
    queued = _plan(archive, events, watched, rules, options)
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


def _latest_picks(archive: Archive, options: DiffOptions, result: DiffResult) -> dict[str, dict[str, list]]:
    """What ``--send-latest K`` sends: the latest K articles of the newly watched scopes and the
    latest K matches of each new rule, as {url: {"sections": [...], "matches": [...]}}."""
    k = options.send_latest
    picks: dict[str, dict[str, list]] = {}
    if result.baseline_scopes:
        for url in archive.latest_unalerted(result.baseline_scopes, k):
            picks[url] = {"sections": list(options.scope.sections), "matches": []}
    new_rules = [rule for rule in options.rules if rule.name in result.baseline_rules]
    if new_rules:
        queued = {a.get("article_url") for a in result.alerts}
        with MatchIndex(archive.rule_documents()) as index:
            docs = index.documents
            for rule in new_rules:
                found = [n for n in index.newest_first(index.matching_docs(rule)) if docs[n].url not in queued]
                for n in found[:k]:
                    pick = picks.setdefault(docs[n].url, {"sections": [], "matches": []})
                    pick["matches"].append(index.first_match(rule, n))
    return picks


def _send_latest(archive: Archive, now: str, run_id: int | None, options: DiffOptions, result: DiffResult) -> None:
    """The latest articles of the newly watched scopes and new rules, once, as a test of the
    channels: one alert per article with the union of their tags."""
    tags_of = {rule.name: rule.tags for rule in options.rules}
    for url, pick in _latest_picks(archive, options, result).items():
        article = archive.alert_article(url)
        sections = [s for s in pick["sections"] if s in article["sections"]]
        tags = messages.alert_tags(article["lang"], article["sections"]) if sections else []
        tags += [tag for match in pick["matches"] for tag in tags_of.get(match.rule, ())]
        message = messages.format_article(
            article, "new", sections, pick["matches"], list(dict.fromkeys(tags)), db=archive.path
        )
        result.alerts.append(archive.enqueue_alert(now, run_id, archive.new_event_id(url), "new", message))
        result.test_alerts += 1
