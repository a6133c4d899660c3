"""``npi-crawler watch``, ``notify`` and ``status``: the change monitor's commands (docs/alerts.md).

Thin: validate the channels, crawl (watch only), diff, deliver, print a summary. Exit codes: 0 ok,
1 error, 3 needs attention (layout break, stuck alerts, last run failed).
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from typing import Any

import click

from npi_crawler import ops_cli
from npi_crawler import settings as defaults
from npi_crawler.cli import base_url_option, db_option, format_summary, one_line_errors, parse_overrides
from npi_crawler.differ import DiffOptions, DiffResult, Scope, diff
from npi_crawler.health import run_health
from npi_crawler.notifier import DeliveryResult, alert_backlog, deliver, load_channels
from npi_crawler.parsing import LANGS, SECTIONS
from npi_crawler.storage import Archive

NEEDS_ATTENTION = 3


def monitor_options(func: Callable) -> Callable:
    options = [
        click.option(
            "--notify",
            "notify_urls",
            multiple=True,
            metavar="APPRISE_URL",
            help="Send alerts to this Apprise URL (repeatable). Also read: the settings file's "
            "[notify] urls and env NPI_NOTIFY_URLS (keeps secrets out of the process list).",
        ),
        click.option(
            "--config",
            "config",
            metavar="FILE",
            envvar="NPI_APPRISE_CONFIG",
            help="Apprise config file (YAML or TEXT) whose tags route alerts to channels.",
        ),
        click.option(
            "--section",
            "sections",
            type=click.Choice(SECTIONS),
            multiple=True,
            help=f"Alert on new articles of this section (repeatable). Default: {', '.join(defaults.NPI_WATCH_SECTIONS)}.",
        ),
        click.option(
            "--lang",
            "langs",
            type=click.Choice(LANGS),
            multiple=True,
            help="Only this language. Default: both.",
        ),
        click.option(
            "--digest", is_flag=True, help="One message per run (per channel) listing every new item."
        ),
        click.option("--changes", is_flag=True, help="Also alert when a watched article is edited."),
        click.option(
            "--removals", is_flag=True, help="Also alert when a watched article's page answers 404/410."
        ),
        click.option(
            "--send-latest",
            type=click.IntRange(min=0),
            default=0,
            metavar="K",
            help="On the first (baseline) run, send the latest K articles anyway, as a test.",
        ),
        click.option(
            "--flood-limit",
            type=click.IntRange(min=0),
            default=defaults.NPI_ALERT_FLOOD_LIMIT,
            show_default=True,
            help="More alerts than this from one run are sent as one summary message (0: no limit).",
        ),
        click.option("--dry-run", is_flag=True, help="Print what would be sent; send nothing, mark nothing."),
        click.option(
            "--admin-tag",
            default=defaults.NPI_ADMIN_TAG,
            show_default=True,
            help="Tag of the channels that get 'needs attention'.",
        ),
        click.option(
            "--max-attempts",
            type=click.IntRange(min=1),
            default=defaults.NPI_ALERT_MAX_ATTEMPTS,
            show_default=True,
            help="Failed deliveries after which an alert is reported as stuck (it is still retried).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _monitor(archive: Archive, opts: dict[str, Any], channels) -> tuple[DiffResult, DeliveryResult]:
    options = DiffOptions(
        scope=Scope(
            sections=tuple(s for s in SECTIONS if s in (opts["sections"] or defaults.NPI_WATCH_SECTIONS)),
            langs=tuple(opts["langs"]) or LANGS,
        ),
        send_latest=opts["send_latest"],
        alert_changes=opts["changes"],
        alert_removals=opts["removals"],
        admin_tag=opts["admin_tag"],
        layout_min_pages=defaults.NPI_LAYOUT_MIN_PAGES,
        flood_limit=opts["flood_limit"],
        dry_run=opts["dry_run"],
    )
    result = diff(archive, options)
    delivery = deliver(
        archive,
        channels,
        digest=opts["digest"],
        dry_run=opts["dry_run"],
        max_attempts=opts["max_attempts"],
        flood_limit=opts["flood_limit"],
        extra=result.alerts if opts["dry_run"] else None,
    )
    return result, delivery


def _report(
    result: DiffResult, delivery: DeliveryResult, channels, dry_run: bool, max_attempts: int
) -> tuple[str, int]:
    """The diff-and-delivery part of the summary, and the exit code it calls for."""
    lines = []
    if result.runs:
        lines.append(
            f"  diff       runs {', '.join(map(str, result.runs))}: {result.new} new, "
            f"{result.changed} changed, {result.removed} removed"
        )
    else:
        lines.append(
            f"  diff       no run to diff: {result.new} new, {result.changed} changed, {result.removed} removed"
        )
    if result.baseline:
        lines.append(f"  baseline: {result.archived} articles archived, no alerts sent")
    elif result.baseline_scopes:
        scopes = ", ".join(f"{s}/{lang}" for lang, s in result.baseline_scopes)
        lines.append(
            f"  baseline of newly watched {scopes}: {result.baseline_articles} articles, no alerts sent"
        )
    if dry_run:
        lines.append(
            f"  dry run: {len(delivery.plan)} message(s) would be sent; nothing sent, nothing marked"
        )
        for label, title, body in delivery.plan:
            lines.append(f"    to {label}: {title}")
            lines += [f"      {line}" for line in body.splitlines()]
    else:
        lines.append(
            f"  alerts     {len(result.alerts)} queued, {delivery.sent} message(s) sent, {delivery.pending} pending"
            f" ({delivery.stuck} stuck), {delivery.failed} failed deliveries, {delivery.unrouted} unrouted"
        )
        counts: dict[str, int] = {}
        for error in delivery.errors:
            counts[error] = counts.get(error, 0) + 1
        lines += [f"    failed: {e}" + (f" (x{n})" if n > 1 else "") for e, n in list(counts.items())[:5]]
        if not channels and delivery.pending:
            lines.append("    no channel configured (--notify, --config): alerts wait in the outbox")
        labels = ", ".join(sorted({c.label for c in channels}))
        if labels:
            lines.append(f"  channels   {labels}")
    code = NEEDS_ATTENTION if result.layout_problems or delivery.stuck else 0
    return "\n".join(lines), code


def _attention(
    result: DiffResult, delivery: DeliveryResult, max_attempts: int, out: ops_cli.RunOutput | None = None
) -> None:
    """What needs a person, on stderr (and in the log file): cron mails it even with --quiet."""
    messages = []
    if result.layout_problems:
        messages.append(
            "npi-crawler needs attention: the site's layout seems to have changed ("
            + "; ".join(result.layout_problems)
            + "); no removals recorded, no article alerts sent"
        )
    if delivery.stuck:
        messages.append(
            f"npi-crawler needs attention: {delivery.stuck} alert(s) stuck after {max_attempts}+ failed "
            "deliveries; they stay pending and are retried every run (see npi-crawler status)"
        )
    for message in messages:
        if out is not None:
            out.to_log_file(message)
        click.echo(message, err=True)


def _channels(opts: dict[str, Any]):
    """Every configured channel, validated before anything runs: --notify, the settings file's
    [notify] urls, NPI_NOTIFY_URLS, and --config."""
    urls = list(dict.fromkeys([*opts["notify_urls"], *ops_cli.configured_notify_urls()]))
    return load_channels(urls, opts["config"])


@click.command()
@db_option
@base_url_option
@click.option("--full", is_flag=True, help="Full crawl: re-check known articles (edits, removals).")
@monitor_options
@click.option(
    "-s",
    "--set",
    "overrides",
    multiple=True,
    metavar="NAME=VALUE",
    help="Override any Scrapy or NPI_* setting of the crawl (repeatable).",
)
@ops_cli.output_options
@one_line_errors
def watch(
    db_path: str,
    base_url: str,
    full: bool,
    overrides: tuple[str, ...],
    quiet: bool,
    verbose: bool,
    log_file: str | None,
    **opts: Any,
) -> None:
    """Crawl incrementally, record what is new/changed/removed, and send the alerts."""
    out = ops_cli.RunOutput(quiet, verbose, log_file)
    settings = {**ops_cli.scrapy_settings(), **parse_overrides(overrides), **out.scrapy_overrides()}
    channels = _channels(opts)  # before crawling: fail fast
    # One run per archive: the crawl, the diff and the deliveries all happen under the run lock.
    with ops_cli.locked_crawl(
        db_path, "watch", out, base_url=base_url, full=full, overrides=settings
    ) as crawl:
        archive = Archive.open(db_path)
        try:
            result, delivery = _monitor(archive, opts, channels)
        finally:
            archive.close()
    summary, code = _report(result, delivery, channels, opts["dry_run"], opts["max_attempts"])
    out.report(
        format_summary(crawl, db_path) + "\n" + summary,
        needs_attention=code != 0
        or crawl.run["status"] != "ok"
        or bool(crawl.run["errors"])
        or bool(crawl.run["warnings"])
        or bool(result.alerts)
        or bool(delivery.sent),
    )
    _attention(result, delivery, opts["max_attempts"], out)
    if crawl.run["status"] == "failed":
        first = crawl.errors[0]["message"] if crawl.errors else "no list page answered"
        raise click.ClickException(
            f"could not crawl {base_url} ({first}); pending alerts were still delivered"
        )
    sys.exit(code)


@click.command()
@db_option
@monitor_options
@one_line_errors
def notify(db_path: str, **opts: Any) -> None:
    """Diff the archive and send the alerts, without crawling (after crawl, Scrapy or Scrapyd)."""
    channels = _channels(opts)
    with ops_cli.locked(db_path, "notify"):
        archive = Archive.open(db_path, create=False)
        try:
            result, delivery = _monitor(archive, opts, channels)
        finally:
            archive.close()
    summary, code = _report(result, delivery, channels, opts["dry_run"], opts["max_attempts"])
    click.echo(summary)
    _attention(result, delivery, opts["max_attempts"])
    sys.exit(code)


def _ago(stamp: str | None) -> str:
    if not stamp:
        return "never"
    then = dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    seconds = int((dt.datetime.now(dt.timezone.utc) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def _took(run: dict[str, Any]) -> str:
    if not run["finished"]:
        return "-"
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    delta = dt.datetime.strptime(run["finished"], fmt) - dt.datetime.strptime(run["started"], fmt)
    return f"{int(delta.total_seconds())} s"


@click.command()
@db_option
@click.option(
    "--runs",
    "limit",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="How many runs to show.",
)
@click.option(
    "--max-attempts",
    type=click.IntRange(min=1),
    default=defaults.NPI_ALERT_MAX_ATTEMPTS,
    show_default=True,
    help="Failed deliveries after which a pending alert counts as stuck.",
)
@one_line_errors
def status(db_path: str, limit: int, max_attempts: int) -> None:
    """Last runs, alerts sent/pending/failed; exit 3 when something needs attention."""
    archive = Archive.open(db_path, create=False)
    try:
        db = archive.db
        live, removed = db.execute(
            "SELECT count(*) - count(removed_at), count(removed_at) FROM articles"
        ).fetchone()
        runs = list(db.query("SELECT * FROM runs ORDER BY id DESC LIMIT ?", [limit]))
        per_run = {
            (r[0], r[1]): r[2]
            for r in db.execute("SELECT run_id, status, count(*) FROM alerts GROUP BY run_id, status")
        }
        totals = dict(db.execute("SELECT status, count(*) FROM alerts GROUP BY status").fetchall())
        pending, stuck = alert_backlog(archive, max_attempts)
        health = run_health(archive)
        stuck_rows = list(
            db.query(
                "SELECT id, title, attempts, last_error FROM alerts WHERE status = 'pending' AND attempts >= ? "
                "ORDER BY id LIMIT 5",
                [max_attempts],
            )
        )
    finally:
        archive.close()
    last = runs[0] if runs else None
    click.echo(
        f"archive    {db_path}: {live} articles ({removed} removed); last run "
        + (f"{last['id']} {_ago(last['started'])}, {last['status']}" if last else "never")
    )
    if runs:
        click.echo(
            "  run  started               took   mode         status   pages  new chg rem  alerts s/p/u  warn  diff"
        )
    for run in runs:
        alerts = "/".join(str(per_run.get((run["id"], s), 0)) for s in ("sent", "pending", "unrouted"))
        click.echo(
            f"  {run['id']:>3}  {run['started']:<20}  {_took(run):>5}  {run['mode']:<11}  {run['status']:<7}  "
            f"{run['list_pages'] or 0:>5}  {run['articles_new'] or 0:>3} {run['articles_updated'] or 0:>3} "
            f"{run['articles_removed'] or 0:>3}  {alerts:>12}  {run['warnings'] or 0:>4}  {run['diff_outcome'] or 'not yet'}"
        )
    click.echo(
        f"alerts     {totals.get('sent', 0)} sent, {pending} pending ({stuck} stuck after {max_attempts}+ failures), "
        f"{totals.get('unrouted', 0)} unrouted"
    )
    for row in stuck_rows:
        click.echo(f"  stuck #{row['id']}: {row['title']} ({row['attempts']} attempts; {row['last_error']})")
    # A failed, killed or stuck last run (npi_crawler.health), then what only the monitor knows.
    problems = list(health.problems) if last else []
    if last and last["diff_outcome"] == "layout_break":
        problems.append(f"the last run ({last['id']}) tripped the layout alarm")
    if stuck:
        problems.append(f"{stuck} alert(s) stuck")
    if problems:
        click.echo("npi-crawler needs attention: " + "; ".join(problems), err=True)
        sys.exit(NEEDS_ATTENTION)
    click.echo("healthy")
