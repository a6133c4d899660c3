"""``npi-crawler probe``: read one page with the site profile and show where every field came from.

What an operator runs first against the live site, and after the layout alarm: each field's value,
the ``[selectors]`` key and selector (or fallback) that produced it, every miss. Exit 0 when every
required key was found by a selector, 3 when one was not (named), 1 when the page cannot be had.
"""

from __future__ import annotations

import sys

import click

from npi_crawler import settings as defaults
from npi_crawler.cli.options import SECONDS, TEXT, contact_option
from npi_crawler.cli.runtime import OneLineError, file_settings, one_line_errors
from npi_crawler.constants import DEFAULT_CONTACT, EXIT_ATTENTION, EXIT_USAGE, user_agent
from npi_crawler.errors import SettingsError
from npi_crawler.userfile import read_bytes


def crawl_identity(contact: str | None) -> tuple[str, str]:
    """(contact, User-Agent) as a crawl would send them: --contact/NPI_CONTACT or the settings
    file's ``contact``, then ``[scrapy] NPI_CONTACT``; a ``[scrapy] USER_AGENT`` wins over both."""
    settings = file_settings()
    contact = contact or settings.value("crawl", "contact") or settings.scrapy.get("NPI_CONTACT") or DEFAULT_CONTACT
    return contact, settings.scrapy.get("USER_AGENT") or user_agent(contact)


def _page(url: str | None, html_file: str | None, page_url: str | None) -> tuple[str, str | None]:
    """The page's address and, for --html, the file; a bad combination is a usage error."""
    if url and page_url and url != page_url:
        raise OneLineError("give the page's address once: as URL or as --url", EXIT_USAGE)
    address = url or page_url
    if not address:
        raise OneLineError("give a URL to fetch, or --html FILE --url URL for a saved page", EXIT_USAGE)
    if page_url and not html_file:
        raise OneLineError("--url is the address of a page given with --html FILE; to fetch it, give it as URL", EXIT_USAGE)
    if not address.startswith(("http://", "https://")):
        raise OneLineError(f"{address!r} must start with http:// or https://", EXIT_USAGE)
    from npi_crawler.cli.probe import shown, url_problem

    if problem := url_problem(address):
        raise OneLineError(f"{shown(address)!r} is not a URL probe can fetch: {problem}", EXIT_USAGE)
    return address, html_file


SAVED_PAGE = click.Path(exists=True, dir_okay=False)


@click.command()
@click.argument("url", type=TEXT, required=False)
@click.option("--html", "html_file", type=SAVED_PAGE, metavar="FILE", help="Probe this saved page (offline); its address in --url.")
@click.option("--url", "page_url", metavar="URL", help="The address of the page given with --html.")
@click.option(
    "--kind",
    type=click.Choice(["auto", "list", "article"]),
    default="auto",
    show_default=True,
    help="Read the page as a list page or an article; auto tells them apart by the URL.",
)
@click.option("--timeout", type=SECONDS, default=30.0, show_default=True, help="Seconds for the whole fetch: robots.txt, redirects and the page.")
@contact_option
@one_line_errors
def probe(url: str | None, html_file: str | None, page_url: str | None, kind: str, timeout: float, contact: str | None) -> None:
    """Show what the crawl would read on one page, field by field, and which selector found it.

    Uses the settings file's [selectors] (npi-crawler --settings FILE probe URL). Fetches the page
    as a crawl does (robots.txt, the User-Agent), or reads a saved one (--html FILE --url URL).
    Exit 3 when a required key (list_entry; article, title, date, body) was found by no selector.
    """
    from npi_crawler.cli.probe import fetch_page, format_probe, probe_html
    from npi_crawler.site.decoding import decode_page
    from npi_crawler.site.profile import load_profile

    address, saved = _page(url, html_file, page_url)
    profile = load_profile(file_settings().selectors)
    if saved:
        body = read_bytes(saved, what="--html", error=SettingsError, max_bytes=defaults.DOWNLOAD_MAXSIZE)
        html, fetched = decode_page(body, None), f"saved page {saved}"
    else:
        _contact, agent = crawl_identity(contact)
        page = fetch_page(address, user_agent=agent, timeout=timeout)
        html, fetched = page.text, f"HTTP {page.status}, {len(page.body):,} bytes"
        address = page.url
    result = probe_html(html, address, profile, None if kind == "auto" else kind)
    for line in format_probe(result, profile, fetched=fetched):
        click.echo(line)
    if result.missed:
        keys = ", ".join(result.missed)
        click.echo(
            f"Error: required key(s) {keys}: no selector matched on this page; fix them under [selectors] "
            "in the settings file, then probe again (docs/alerts.md)",
            err=True,
        )
        sys.exit(EXIT_ATTENTION)
