"""``npi-crawler rules check``: what watcher rules match in the archive, before anyone subscribes;
and ``configured_rules``, the rules every command uses (the settings file's ``[[rule]]`` tables,
then a rules file given with ``--rules``), loaded and validated before anything runs."""

from __future__ import annotations

import json
from typing import Any

import click

from npi_crawler.archive import Archive
from npi_crawler.cli.options import WholeNumber, db_option
from npi_crawler.cli.runtime import file_settings, one_line_errors
from npi_crawler.cli.textwidth import whole_lines
from npi_crawler.rules.model import DOCS, Rule, RulesError, load_rules


def configured_rules(rules_file: str | None) -> tuple[Rule, ...]:
    """The settings file's ``[[rule]]`` tables, then the rules of ``rules_file``: all valid and
    with names of their own, or RulesError (one line, exit 2)."""
    settings = file_settings()
    rules = settings.rules
    if not rules_file:
        return rules
    taken = {rule.name.casefold() for rule in rules}
    extra = load_rules(rules_file)
    for rule in extra:
        if rule.name.casefold() in taken:
            raise RulesError(
                f"{rules_file}: rule '{rule.name}' is also in the settings file {settings.path}; "
                "give every rule its own name"
            )
    return rules + extra


def find_rule(rules: tuple[Rule, ...], name: str) -> Rule:
    """The rule called ``name`` (case does not matter), or RulesError naming the rules there are."""
    for rule in rules:
        if rule.name.casefold() == name.casefold():
            return rule
    if not rules:
        raise RulesError(f"no rule named '{name}': no rules given; use --rules FILE or [[rule]] tables ({DOCS})")
    raise RulesError(f"no rule named '{name}'; the rules are {', '.join(r.name for r in rules)}")


def _print_report(reports: list[Any], source: str, total: int, db_path: str) -> None:
    click.echo(f"{source}: {len(reports)} rule(s) over {total} archived articles in {db_path}")
    width = max(len(r.rule.name) for r in reports)
    for report in reports:
        tags = ", ".join(report.rule.tags)
        click.echo(f"{report.rule.name:<{width}}  {report.count:>5} article(s)  tags: {tags}")
        for doc, match in report.latest:
            where = f"PDF {match.pdf_url}" if match.where == "pdf" else match.where
            click.echo(f"    {doc.published or '(no date)'}  {doc.lang}  {doc.title}")
            click.echo(f"        {doc.url}")
            click.echo(f"        match in {where}: {match.snippet}")


@click.command("rules")
@click.argument("action", type=click.Choice(["check"]))
@click.argument("rules_path", metavar="[FILE]", required=False)
@db_option
@click.option(
    "--latest", type=WholeNumber(min=0), default=3, show_default=True, help="Show each rule's N newest matches."
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@one_line_errors
def rules(action: str, rules_path: str | None, db_path: str, latest: int, fmt: str) -> None:
    """Tune watcher rules before subscribing: ``npi-crawler rules check FILE``.

    For each rule of FILE: how many archived articles it matches (in the title, the body or a
    linked PDF) and the newest few, with the text around the first match. Without FILE: the
    settings file's [[rule]] tables and its rules file. A bad rule is one line, exit 2. Read-only.
    """
    from npi_crawler.rules.check import check_rules

    if rules_path:
        checked, source = load_rules(rules_path), rules_path
    else:
        settings = file_settings()
        checked = configured_rules(settings.value("watch", "rules_file"))
        source = settings.path or "settings"
    if not checked:
        raise RulesError(f"no rules to check; give a rules FILE or [[rule]] tables in the settings file ({DOCS})")
    with Archive.open(db_path, readonly=True) as archive:
        total = archive.article_counts()[0]
        reports = check_rules(archive, checked, latest)
    if fmt == "json":
        whole_lines()
        click.echo(json.dumps([r.as_dict() for r in reports], ensure_ascii=False, indent=2))
    else:
        _print_report(reports, source, total, db_path)
