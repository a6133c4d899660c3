"""``npi-crawler doctor``: check the settings, the archive, the site and each channel, one line each."""

from __future__ import annotations

import sys

import click
from click.core import ParameterSource

from npi_crawler.cli.options import SECONDS, base_url_option, channel_options, contact_option, db_option
from npi_crawler.cli.probing import crawl_identity
from npi_crawler.cli.runtime import META_ERROR, configured_notify_urls, file_settings, os_error_message
from npi_crawler.errors import ChannelError


@click.command()
@db_option
@base_url_option
@click.option("--timeout", type=SECONDS, default=15.0, show_default=True, help="Seconds per request to the site.")
@channel_options
@click.option("--no-notify", is_flag=True, help="Do not send the test notifications.")
@contact_option
def doctor(
    db_path: str,
    base_url: str,
    timeout: float,
    notify_urls: tuple[str, ...],
    config: str | None,
    no_notify: bool,
    contact: str | None,
) -> None:
    """Check the settings, the archive, the site and each notification channel; one line each.

    The test notification goes to exactly the channels watch would use (--notify, --config, the
    settings file's [notify] urls, NPI_NOTIFY_URLS, NPI_APPRISE_CONFIG). Exit 0 when every check
    passes, 1 otherwise.
    """
    from npi_crawler import __version__
    from npi_crawler.cli.doctor import (
        Check,
        archive_facts,
        check_archive,
        check_contact,
        check_site,
        watch_reason,
    )

    contact, agent = crawl_identity(contact)
    checks: list[Check] = [_settings_check(), check_contact(contact, agent)]
    try:
        checks += check_archive(db_path)
        crawled_from, alerts = archive_facts(db_path)
    except OSError as exc:  # a folder this user may not enter (StateDirectoryMode=0700): a failed check
        checks.append(Check("archive", False, os_error_message(exc)))
        crawled_from, alerts = None, {}
    # The site the archive was crawled from (a replica, a mirror), unless --base-url names one.
    if crawled_from and click.get_current_context().get_parameter_source("base_url") == ParameterSource.DEFAULT:
        base_url = crawled_from
    settings = file_settings()
    langs = settings.value("crawl", "langs") or ("en",)
    sections = settings.value("crawl", "sections") or ("policy",)
    checks += check_site(base_url, user_agent=agent, lang=langs[0], section=sections[0], timeout=timeout)
    if no_notify:
        checks.append(Check("notify", True, "skipped (--no-notify)"))
    else:
        body = f"npi-crawler {__version__} doctor on {db_path}: this channel works."
        checks += _channel_checks(notify_urls, config, body, watch_reason(settings.watches, alerts))
    for check in checks:
        click.echo(check.line())
    click.echo(_tally(checks))
    if any(not c.ok for c in checks):
        sys.exit(1)


def _tally(checks: list) -> str:
    """``8 ok, 1 failed, 1 warning``: an info line (nothing to check) is none of them."""
    failed = sum(1 for c in checks if not c.ok)
    warned = sum(1 for c in checks if c.ok and c.warn)
    info = sum(1 for c in checks if c.ok and c.info)
    plural = "s" if warned > 1 else ""
    return f"{len(checks) - failed - warned - info} ok, {failed} failed" + (f", {warned} warning{plural}" if warned else "")


def _settings_check():
    from npi_crawler.cli.doctor import Check

    error = click.get_current_context().find_root().meta.get(META_ERROR)
    if error:
        return Check("settings", False, error)
    path = file_settings().path
    return Check("settings", True, f"{path} is valid" if path else "no settings file; defaults and flags only")


def _channel_checks(notify_urls: tuple[str, ...], config: str | None, body: str, watched: str | None) -> list:
    from npi_crawler.cli.doctor import Check, check_notifications

    urls = list(dict.fromkeys([*notify_urls, *configured_notify_urls()]))
    if not urls and not config:
        return check_notifications([], body=body, watched=watched)
    from npi_crawler.monitor.channels import load_channels

    try:
        channels = load_channels(urls, config)
    except ChannelError as exc:
        return [Check("notify", False, str(exc))]
    return check_notifications(channels, body=body)
