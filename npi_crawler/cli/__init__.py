"""The ``npi-crawler`` command: a thin click layer over the library.

The group lives here; each command family in its own module (crawling, monitoring, research,
ops), every shared option once in ``options`` at the bottom of the import graph. Commands import
Scrapy, Apprise, pypdf or feedgen only when they run and need them, so ``--help``, ``status``,
``search`` and ``export`` start as fast as sqlite-utils' own CLI.
"""

from __future__ import annotations

import sys
import warnings

import click

from npi_crawler import __version__
from npi_crawler.cli.crawling import crawl, migrate
from npi_crawler.cli.monitoring import notify, status, watch
from npi_crawler.cli.ops import doctor
from npi_crawler.cli.research import export, feed, history, search, serve
from npi_crawler.cli.rules import rules
from npi_crawler.cli.runtime import apply_settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="npi-crawler")
@click.option(
    "--settings",
    "settings_path",
    envvar="NPI_CRAWLER_SETTINGS",
    metavar="FILE",
    help="TOML settings file (default: ./npi-crawler.toml when present); flags win over it.",
)
@click.pass_context
def cli(ctx: click.Context, settings_path: str | None) -> None:
    """Archive and watch the Nakasone Peace Institute's publications (npi.or.jp)."""
    apply_settings(ctx, settings_path)


for _command in (crawl, watch, notify, status, rules, export, search, feed, history, serve, doctor, migrate):
    cli.add_command(_command)


def main() -> None:
    if not sys.warnoptions:
        # Library deprecations are for developers; a user's terminal gets the summary only.
        warnings.simplefilter("ignore", DeprecationWarning)
        # Scrapy's own ScrapyDeprecationWarning is no DeprecationWarning subclass; matched by
        # module so that `--help` need not import Scrapy for its class.
        warnings.filterwarnings("ignore", category=Warning, module=r"scrapy(\.|$)")
    try:
        cli(prog_name="npi-crawler")
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


__all__ = ["cli", "main"]
