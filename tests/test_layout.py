"""The layout keeps one owner per concern (issue 15): no import cycle, outside libraries imported
only by the module that owns them, SQL only in archive/, no long functions; and the commands a
researcher types most never import the crawler or the notifier."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "npi_crawler"
MODULES = sorted(
    ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    for p in PACKAGE.rglob("*.py")
    if p.name != "__main__.py"  # runs the command line when imported, by design
)
# Who may import what: an outside library -> the modules (prefixes) allowed to import it.
OWNERS = {
    "apprise": ("npi_crawler.monitor.channels",),
    "pypdf": ("npi_crawler.pdftext",),
    "scrapy": (
        "npi_crawler.runner",
        "npi_crawler.runstate",
        "npi_crawler.spiders",
        "npi_crawler.pipelines",
        "npi_crawler.middlewares",
        "npi_crawler.extensions",
        "npi_crawler.warc_recorder",  # a downloader middleware (Scrapy's place for one)
    ),
    "twisted": ("npi_crawler.runner", "npi_crawler.spiders", "npi_crawler.middlewares", "npi_crawler.extensions"),
}
# The project writes SQL keywords in capitals; prose ("select ... from") must not count.
SQL = re.compile(r"\b(SELECT\s.+?\sFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+(TABLE|INDEX|TRIGGER))\b", re.S)


def imports(path: Path) -> list[tuple[str, int]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.module, node.lineno))
    return found


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def test_every_module_imports_alone():
    """`python -c "import npi_crawler.cli.<module>"` works for every module: no import cycle."""
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    failures = []
    for name in MODULES:  # each in a fresh interpreter: an earlier import must not hide a cycle
        proc = subprocess.run([sys.executable, "-c", code, name], cwd=ROOT, capture_output=True, text=True)
        if proc.returncode:
            failures.append(f"{name}: {proc.stderr.strip().splitlines()[-1]}")
    assert failures == []


def test_the_cli_the_archive_and_the_readers_leave_the_crawler_and_apprise_out():
    code = (
        "import sys, npi_crawler.cli, npi_crawler.archive, npi_crawler.research, npi_crawler.research.search\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'scrapy', 'twisted', 'apprise', 'pypdf', 'lxml'}))"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize("library", sorted(OWNERS))
def test_an_outside_library_is_imported_only_by_its_owner(library):
    wrong = [
        f"{module_name(path)}:{line}"
        for path in PACKAGE.rglob("*.py")
        for name, line in imports(path)
        if name.split(".")[0] == library and not module_name(path).startswith(OWNERS[library])
    ]
    assert wrong == []


def test_sql_lives_in_the_archive_package_only():
    outside = []
    for path in PACKAGE.rglob("*.py"):
        if path.is_relative_to(PACKAGE / "archive"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
                outside.append(f"{module_name(path)}:{node.lineno}")
    assert outside == []


def test_no_function_is_longer_than_sixty_lines():
    long = [
        f"{module_name(path)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 60
    ]
    assert long == []
