"""``npi-crawler watch``, ``notify`` and ``status``: the change monitor's commands (docs/alerts.md).

Thin: validate the channels, crawl (watch only), diff, deliver, print a summary. Exit codes: 0 ok,
1 error, 3 needs attention (layout break, stuck alerts, last run failed), 75 another run holds
the archive.
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

import click

from npi_crawler import settings as defaults
from npi_crawler.archive import Archive, ParseHealth
from npi_crawler.archive.db import parse_stamp
from npi_crawler.cli.crawling import (
    LAYOUT_BREAK,
    crawl_needs_attention,
    fail_if_nothing_crawled,
    format_summary,
    run_attention,
)
from npi_crawler.cli.options import (
    COUNT,
    base_url_option,
    db_option,
    max_attempts_option,
    monitor_options,
    output_options,
    politeness_options,
    set_option,
    sweep_options,
    warc_options,
    warc_settings,
)
from npi_crawler.cli.rules import configured_rules
from npi_crawler.cli.runtime import (
    RunOutput,
    configured_notify_urls,
    crawl_settings,
    locked,
    locked_crawl,
    one_line_errors,
)
from npi_crawler.cli.textwidth import fit_table, output_columns
from npi_crawler.constants import EXIT_ATTENTION
from npi_crawler.monitor.health import CLOCK_SLACK
from npi_crawler.site import LANGS, SECTIONS

RESEND_UNKNOWN = "npi-crawler notify --resend-unknown"


def load_channels(opts: dict[str, Any]) -> list:
    """Every configured channel, validated before anything runs: --notify, the settings file's
    [notify] urls, NPI_NOTIFY_URLS, and --config. Apprise is imported only when there is one."""
    urls = list(dict.fromkeys([*opts["notify_urls"], *configured_notify_urls()]))
    if not urls and not opts["config"]:
        return []
    from npi_crawler.monitor.channels import load_channels as load

    return load(urls, opts["config"])


class Channels:
    """The configured channels, loaded and validated (Apprise) once, when first needed: before a
    crawl starts (a bad channel fails the run before its crawl), or when a message is to be sent.
    A watch whose check found nothing to crawl and that has nothing to send never imports Apprise
    (issue 20: it costs more than the rest of such a run)."""

    def __init__(self, opts: dict[str, Any]):
        self.opts = opts
        self._channels: list | None = None

    def load(self) -> list:
        if self._channels is None:
            self._channels = load_channels(self.opts)
        return self._channels

    @property
    def loaded(self) -> list:
        return self._channels or []


def _monitor(archive: Archive, opts: dict[str, Any], channels: Channels, rules: tuple) -> tuple[Any, Any]:
    from npi_crawler.monitor.delivery import DeliveryOptions, deliver
    from npi_crawler.monitor.differ import DiffOptions, Scope, diff

    scope = Scope(
        sections=tuple(s for s in SECTIONS if s in (opts["sections"] or defaults.NPI_WATCH_SECTIONS)),
        langs=tuple(opts["langs"]) or LANGS,
    )
    result = diff(
        archive,
        DiffOptions(
            scope=scope,
            send_latest=opts["send_latest"],
            alert_changes=opts["changes"],
            alert_removals=opts["removals"],
            admin_tag=opts["admin_tag"],
            layout_min_pages=defaults.NPI_LAYOUT_MIN_PAGES,
            flood_limit=opts["flood_limit"],
            dry_run=opts["dry_run"],
            rules=rules,
        ),
    )
    options = DeliveryOptions(
        digest=opts["digest"],
        dry_run=opts["dry_run"],
        max_attempts=opts["max_attempts"],
        flood_limit=opts["flood_limit"],
        admin_tag=opts["admin_tag"],
    )
    to_send = bool(result.alerts) or opts["dry_run"] or archive.alert_backlog(opts["max_attempts"])[0] > 0
    delivery = deliver(archive, channels.load() if to_send else [], options, extra=result.alerts if opts["dry_run"] else None)
    return result, delivery


def _diff_lines(result: Any) -> list[str]:
    counts = f"{result.new} new, {result.changed} changed, {result.removed} removed"
    runs = f"runs {', '.join(map(str, result.runs))}: " if result.runs else "no run to diff: "
    counts += f", {result.joined} joined a section" if result.joined else ""
    lines = [f"  diff       {runs}{counts}"]
    # --send-latest K alerts K baseline articles anyway: say so instead of "no alerts".
    alerts = f"the latest {result.test_alerts} alerted as a test (--send-latest)" if result.test_alerts else "no alerts sent"
    if result.baseline_rules:
        lines.append(f"  baseline of new rule(s) {', '.join(result.baseline_rules)}: no alerts sent for what they match now")
    if result.held:
        lines.append(f"  held       {result.held} alert(s) until a healthy run (layout alarm)")
    if result.released:
        lines.append(f"  released   {result.released} event(s) held since the layout alarm")
    if result.baseline:
        lines.append(f"  baseline: {result.archived} articles archived, {alerts}")
    elif result.baseline_scopes:
        scopes = ", ".join(f"{s}/{lang}" for lang, s in result.baseline_scopes)
        lines.append(f"  baseline of newly watched {scopes}: {result.baseline_articles} articles, {alerts}")
    return lines


def _delivery_lines(result: Any, delivery: Any, channels: list, dry_run: bool) -> list[str]:
    if dry_run:
        lines = [f"  dry run: {len(delivery.plan)} message(s) would be sent; nothing sent, nothing marked"]
        for label, title, body in delivery.plan:
            lines.append(f"    to {label}: {title}")
            lines += [f"      {line}" for line in body.splitlines()]
        return lines
    lines = [
        f"  alerts     {len(result.alerts)} queued, {delivery.sent} message(s) sent, {delivery.pending} pending"
        f" ({delivery.stuck} stuck), {delivery.failed} failed deliveries, {delivery.unrouted} unrouted"
    ]
    counts: dict[str, int] = {}
    for error in delivery.errors:
        counts[error] = counts.get(error, 0) + 1
    lines += [f"    failed: {e}" + (f" (x{n})" if n > 1 else "") for e, n in list(counts.items())[:5]]
    lines += [f"    no answer: {label}: {title} ({why})" for label, title, why in delivery.unknown[:5]]
    if delivery.admins_told:
        lines.append(f"    told the admin channel(s) {', '.join(delivery.admins_told)} of the failures")
    if not channels and delivery.pending:
        lines.append("    no channel configured (--notify, --config): alerts wait in the outbox")
    if labels := ", ".join(sorted({c.label for c in channels})):
        lines.append(f"  channels   {labels}")
    return lines


def _report(result: Any, delivery: Any, channels: list, dry_run: bool) -> tuple[str, int]:
    """The diff-and-delivery part of the summary, and the exit code it calls for."""
    lines = _diff_lines(result) + _delivery_lines(result, delivery, channels, dry_run)
    trouble = result.layout_problems or delivery.failures or delivery.stuck or delivery.unknown
    code = EXIT_ATTENTION if trouble else 0
    return "\n".join(lines), code


def _unheard(result: Any, delivery: Any, channels: list, opts: dict[str, Any]) -> bool:
    """Alerts no channel will carry (or a dry run's plan, there to be read): the summary is
    printed even with --quiet. Alerts delivered as meant are not news for cron to mail."""
    return opts["dry_run"] or bool(delivery.unrouted) or (not channels and bool(result.alerts))


def _attention(result: Any, delivery: Any, max_attempts: int, out: RunOutput) -> None:
    """What needs a person, on stderr (and in the log file): cron mails it even with --quiet."""
    from npi_crawler.monitor.trouble import failure_lines

    if result.layout_problems:
        out.attention(
            "npi-crawler needs attention: the site's layout seems to have changed ("
            + "; ".join(result.layout_problems)
            + "); no removals recorded, no article alerts sent"
        )
    for line in failure_lines(delivery.failures.values(), delivery.next_attempt):
        out.attention(line)
    if delivery.stuck:
        out.attention(
            f"npi-crawler needs attention: {delivery.stuck} alert(s) stuck after {max_attempts}+ failed "
            "deliveries; they stay pending and are retried every run (see npi-crawler status)"
        )
    if delivery.unknown:
        out.attention(
            f"npi-crawler needs attention: {len(delivery.unknown)} message(s) sent without an answer "
            f"({', '.join(sorted({label for label, _t, _w in delivery.unknown}))}): they may have arrived and "
            f"are not sent again; if they did not, run '{RESEND_UNKNOWN}'"
        )


@click.command()
@db_option
@base_url_option
@click.option("--full", is_flag=True, help="Full crawl: re-check known articles (edits, removals).")
@monitor_options
@politeness_options
@set_option
@warc_options
@sweep_options
@output_options
@one_line_errors
def watch(
    db_path: str,
    base_url: str,
    full: bool,
    delay: float | None,
    concurrency: int | None,
    overrides: tuple[str, ...],
    quiet: bool,
    verbose: bool,
    log_file: str | None,
    **opts: Any,
) -> None:
    """Check the site cheaply, crawl what changed, record what is new/changed/removed, send the alerts."""
    # Checked first: a bad -s or [scrapy] value must not leave a log file or a lock behind.
    contact = opts.pop("contact")
    extra = warc_settings(opts.pop("warc_dir"), opts.pop("no_warc"))
    settings = crawl_settings(overrides, delay=delay, concurrency=concurrency, contact=contact, **extra)
    out = RunOutput(quiet, verbose, log_file)
    settings.update(out.scrapy_overrides())
    channels = Channels(opts)  # loaded before a crawl (fail fast), or when there is something to send
    rules = configured_rules(opts["rules_file"])
    sweep = {key: opts.pop(key) for key in ("sweep_lists", "sweep_articles", "ignore_retry_after")}
    # One run per archive: the crawl, the diff and the deliveries all happen under the run lock.
    with locked_crawl(
        db_path, "watch", out, base_url=base_url, full=full, overrides=settings, before_crawl=channels.load, **sweep
    ) as crawl:
        with Archive.open(db_path) as archive:
            result, delivery = _monitor(archive, opts, channels, rules)
    summary, code = _report(result, delivery, channels.loaded, opts["dry_run"])
    if opts["dry_run"]:  # the crawl is not rolled back, only the diff: say so
        summary += f"\n  dry run: the crawl above is stored in {db_path}; the next watch alerts what it found"
    shown = LAYOUT_BREAK if result.layout_problems else None
    summary = format_summary(crawl, db_path, status=shown, verbose=out.verbose) + "\n" + summary
    advice = f"{delivery.sent} pending alert message(s) were still delivered"
    fail_if_nothing_crawled(crawl, base_url, advice, out, summary)
    out.report(summary, needs_attention=code != 0 or crawl_needs_attention(crawl) or _unheard(result, delivery, channels.loaded, opts))
    _attention(result, delivery, opts["max_attempts"], out)
    sys.exit(run_attention(crawl, out) or code)


@click.command()
@db_option
@monitor_options
@click.option(
    "--resend-unknown",
    is_flag=True,
    help="Send again the messages that went out without an answer (see status); they may arrive twice.",
)
@output_options
@one_line_errors
def notify(db_path: str, resend_unknown: bool, quiet: bool, verbose: bool, log_file: str | None, **opts: Any) -> None:
    """Diff the archive and send the alerts, without crawling (after crawl, Scrapy or Scrapyd)."""
    out = RunOutput(quiet, verbose, log_file)
    channels = Channels(opts)
    channels.load()  # before anything: fail fast
    rules = configured_rules(opts["rules_file"])
    with locked(db_path, "notify", out), Archive.open(db_path, create=False) as archive:
        reopened = archive.reopen_unknown() if resend_unknown and not opts["dry_run"] else 0
        result, delivery = _monitor(archive, opts, channels, rules)
        crawls = [run for run in map(archive.run, result.runs) if run]
    summary, code = _report(result, delivery, channels.loaded, opts["dry_run"])
    if resend_unknown:
        summary = f"  resend     {reopened} delivery(ies) of unknown outcome made pending again\n" + summary
    # The crawls it diffed (a Scrapyd job's, say) are reported here: nothing else would say that
    # the job reached nothing, or met errors, when notify runs from cron after it.
    troubled = [run for run in crawls if _crawl_trouble(run)]
    summary = "\n".join([*(_crawl_line(run) for run in troubled), summary])
    out.report(summary, needs_attention=code != 0 or bool(troubled) or _unheard(result, delivery, channels.loaded, opts))
    _attention(result, delivery, opts["max_attempts"], out)
    if failed := [run["id"] for run in troubled if run["status"] == "failed"]:
        out.attention(f"npi-crawler needs attention: the crawl of run {failed[-1]} reached nothing (see its run_errors)")
        code = EXIT_ATTENTION
    sys.exit(code)


def _crawl_trouble(run: dict[str, Any]) -> bool:
    """A crawl that needs a look: not ok, or with errors or warnings (cli.crawling's rule)."""
    return run["status"] != "ok" or bool(run["errors"]) or bool(run["warnings"])


def _crawl_line(run: dict[str, Any]) -> str:
    return (
        f"  crawl      run {run['id']} ({run['mode']}) of {run['base_url']}: {run['status']}, "
        f"{run['errors'] or 0} errors, {run['warnings'] or 0} warnings (npi-crawler status; table run_errors)"
    )


def _ago(text: str | None) -> str:
    then = parse_stamp(text)
    if then is None:
        return "never"
    seconds = int((dt.datetime.now(dt.timezone.utc) - then).total_seconds())
    if seconds < -CLOCK_SLACK.total_seconds():  # the clock was set back since: no negative age
        return f"started {_span(-seconds)} in the future (check the clock)"
    return f"{_span(max(seconds, 0))} ago"


def _span(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _took(run: dict[str, Any]) -> str:
    finished, started = parse_stamp(run["finished"]), parse_stamp(run["started"])
    if finished is None or started is None or finished < started:  # unknown, or the clock moved back mid-run
        return "-"
    return f"{int((finished - started).total_seconds())} s"


def _shown_status(run: dict[str, Any], health: ParseHealth) -> str:
    """A run's status as status shows it: one that tripped the layout alarm never says ``ok``,
    nor one that no diff has read yet (a crawl without watch) whose pages trip it."""
    if run["diff_outcome"] == LAYOUT_BREAK:
        return LAYOUT_BREAK
    if run["diff_outcome"] is None and run["status"] in ("ok", "partial"):
        from npi_crawler.monitor.differ import layout_problem

        if layout_problem(run, health, defaults.NPI_LAYOUT_MIN_PAGES):
            return LAYOUT_BREAK
    return run["status"]


def _notes(health: ParseHealth) -> int:
    """The run's notes: parse notes that are no warning (site.notes), counted by pages."""
    from npi_crawler.site.notes import is_warning

    return sum(n for note, n in health.notes.items() if not is_warning(note))


RUN_HEADER = [
    "run", "started", "took", "mode", "status", "pages", "new", "chg", "rem", "alerts s/p/u", "warn", "notes", "diff",
]  # fmt: skip


def _run_row(run: dict[str, Any], health: ParseHealth, per_run: dict[tuple[int, str], int]) -> list[str]:
    alerts = "/".join(str(per_run.get((run["id"], s), 0)) for s in ("sent", "pending", "unrouted"))
    counts = ("list_pages", "articles_new", "articles_updated", "articles_removed")
    return [
        str(run["id"]), run["started"], _took(run), run["mode"], _shown_status(run, health),
        *(str(run[c] or 0) for c in counts), alerts, str(run["warnings"] or 0), str(_notes(health)),
        run["diff_outcome"] or "not yet",
    ]  # fmt: skip


@click.command()
@db_option
@click.option(
    "--runs", "limit", type=COUNT, default=10, show_default=True, help="How many runs to show."
)
@max_attempts_option
@one_line_errors
def status(db_path: str, limit: int, max_attempts: int) -> None:
    """Last runs, alerts sent/pending/failed; exit 3 when something needs attention."""
    from npi_crawler.monitor.health import run_health

    with Archive.open(db_path, readonly=True) as archive:
        live, removed = archive.article_counts()
        runs = archive.recent_runs(limit)
        per_run, totals = archive.alerts_per_run(), archive.alert_totals()
        pending, stuck = archive.alert_backlog(max_attempts)
        health = run_health(archive)
        stuck_rows = archive.stuck_alerts(max_attempts)
        held = archive.held_count()
        unknown, unknown_rows = archive.count_unknown_deliveries(), archive.unknown_deliveries()
        healths = {run["id"]: archive.parse_health(run["id"]) for run in runs}
        hold = archive.retry_hold()
    last = runs[0] if runs else None
    last_health = healths[last["id"]] if last else None
    click.echo(
        f"archive    {db_path}: {live} articles ({removed} removed); last run "
        + (f"{last['id']} {_ago(last['started'])}, {_shown_status(last, healths[last['id']])}" if last else "never")
    )
    if hold:  # the site's Retry-After (npi_crawler/check.py): runs before then send nothing
        said = hold["message"] or f"no request to the site before {hold['until']}"
        click.echo(f"site       asked to be left alone: {said} (run {hold['run_id']}); runs before then exit 75")
    if runs:
        table = [RUN_HEADER, *(_run_row(run, healths[run["id"]], per_run) for run in runs)]
        for line in fit_table(table, "><><<>>>>>>><", output_columns()):
            click.echo(line)
    click.echo(
        f"alerts     {totals.get('sent', 0)} sent, {pending} pending ({stuck} stuck after {max_attempts}+ failures), "
        f"{totals.get('unrouted', 0)} unrouted"
    )
    for row in stuck_rows:
        click.echo(f"  stuck #{row['id']}: {row['title']} ({row['attempts']} attempts; {row['last_error']})")
    if held:
        plural = "s" if held != 1 else ""
        click.echo(f"  {held} alert{plural} held since the layout alarm; sent once a run finds the site healthy again")
    if unknown:
        click.echo(
            f"  {unknown} message(s) sent without an answer, not sent again: they may have arrived; "
            f"if not, '{RESEND_UNKNOWN}'"
        )
    for row in unknown_rows:
        click.echo(f"  no answer #{row['alert_id']} from {row['label']} at {row['last_attempt']}: {row['title']}")
    # A failed, killed or stuck last run (monitor.health), then what only the monitor knows.
    problems = list(health.problems) if last else []
    if last and last_health and _shown_status(last, last_health) == LAYOUT_BREAK:
        from npi_crawler.monitor.differ import layout_problem

        detail = layout_problem(last, last_health, defaults.NPI_LAYOUT_MIN_PAGES)  # names the keys and probe
        problems.append(f"the last run ({last['id']}) tripped the layout alarm" + (f" ({detail})" if detail else ""))
    if stuck:
        problems.append(f"{stuck} alert(s) stuck")
    if problems:
        click.echo("npi-crawler needs attention: " + "; ".join(problems), err=True)
        sys.exit(EXIT_ATTENTION)
    click.echo("healthy")
