"""The ``npi-crawler`` command: a thin click layer over the library.

The group lives here; each command family in its own module (crawling, monitoring, research,
ops), every shared option once in ``options`` at the bottom of the import graph. Commands import
Scrapy, Apprise, pypdf or feedgen only when they run and need them, so ``--help``, ``status``,
``search`` and ``export`` start as fast as sqlite-utils' own CLI.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Sequence
from typing import Any

import click

from npi_crawler import __version__
from npi_crawler.cli.crawling import crawl, migrate
from npi_crawler.cli.monitoring import notify, status, watch
from npi_crawler.cli.ops import doctor
from npi_crawler.cli.probing import probe
from npi_crawler.cli.research import cite, export, feed, history, search, serve
from npi_crawler.cli.rules import rules
from npi_crawler.cli.runtime import apply_settings, finish_output, tolerant_output
from npi_crawler.cli.snapshot import snapshot
from npi_crawler.cli.textwidth import terminal_gate
from npi_crawler.runner import STOPS, Stopped


class OneLineGroup(click.Group):
    """click's group, with every error on ONE line (click prints a usage error as the usage, a
    hint and the error: three lines a cron mail or a log does not need), and everything written
    through the terminal gate (cli/textwidth.py: no control characters, human output fitted)."""

    def main(self, args: Sequence[str] | None = None, standalone_mode: bool = True, **kwargs: Any) -> Any:  # type: ignore[override]
        with terminal_gate():
            return self._main(args, standalone_mode=standalone_mode, **kwargs)

    def _main(self, args: Sequence[str] | None, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(args, standalone_mode=False, **kwargs)
        try:
            result = super().main(args, standalone_mode=False, **kwargs)
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            click.echo(f"Error: {exc.format_message()}{hint}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


@click.group(cls=OneLineGroup, context_settings={"help_option_names": ["-h", "--help"]})
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


for _command in (
    crawl, watch, notify, status, rules, export, search, cite, feed, history, snapshot, serve, doctor, probe, migrate
):
    cli.add_command(_command)


def main() -> None:
    if not sys.warnoptions:
        # Library deprecations are for developers; a user's terminal gets the summary only.
        warnings.simplefilter("ignore", DeprecationWarning)
        # Scrapy's own ScrapyDeprecationWarning is no DeprecationWarning subclass; matched by
        # module so that `--help` need not import Scrapy for its class.
        warnings.filterwarnings("ignore", category=Warning, module=r"scrapy(\.|$)")
    tolerant_output()  # any text, any locale: never a UnicodeEncodeError (cli/runtime.py)
    # A log file that stops taking bytes mid-run (a full disk) loses records, not the run: no
    # "--- Logging error ---" traceback per record (the run's last line says so, cli/runtime.py).
    logging.raiseExceptions = False
    # SIGINT and SIGTERM are inputs (npi_crawler.runner): never a traceback, never recorded as ok.
    # Inside a command, one_line_errors turns Stopped into its one line and exit code; this is for
    # a signal that arrives before or after the command itself.
    code: Any = 0
    try:
        with STOPS.handling():
            cli(prog_name="npi-crawler")
    except SystemExit as exc:
        code = exc.code
    except Stopped as exc:
        click.echo(f"Error: {exc}", err=True)
        code = exc.exit_code
    sys.exit(finish_output(code))


__all__ = ["cli", "main"]
