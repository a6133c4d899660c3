"""The layout keeps one owner per concern (issues 15 and 18): no import cycle (imports inside
functions included), outside libraries imported only by the module that owns them, the site package
without Scrapy, SQL only in archive/, no long functions or modules; and the commands a researcher
types most never import the crawler or the notifier."""

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
    "cssselect": ("npi_crawler.site.profile",),  # the profile compiles its CSS selectors
    "lxml": ("npi_crawler.site",),  # pages are read by the site package only
    "pypdf": ("npi_crawler.site.pdftext",),
    "readability": ("npi_crawler.site.articles",),  # the last-resort body
    "yaml": ("npi_crawler.monitor.channels",),  # Apprise's YAML parser, for its config files' keys
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


MAX_MODULE_LINES = 500
# No cycle is allowed, not even through an import inside a function (the last one, archive/db.py
# <-> archive/migrations.py, went with issue 19's archive layers).
ALLOWED_CYCLE_EDGES: set[tuple[str, str]] = set()
# The parse notes' names are written in site/notes.py only; elsewhere they are read by name.
NOTE_LITERAL = re.compile(r"^(fallback|miss|nomatch|cap|bad_link|truncated)/[a-z_]+$")


def imports(path: Path) -> list[tuple[str, int]]:
    """Every module an ``import`` or ``from`` anywhere in the file names (inside functions too);
    ``from package import name`` also names ``package.name``, which may be a module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.module, node.lineno))
            found += [(f"{node.module}.{alias.name}", node.lineno) for alias in node.names]
    return found


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def import_graph() -> dict[str, set[str]]:
    """module -> the project's modules it imports, wherever in the module the import is."""
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m, _line in imports(path) if m in paths and m != name} for name, path in paths.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_module_imports_alone():
    """`python -c "import npi_crawler.cli.<module>"` works for every module: no import cycle."""
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    failures = []
    for name in MODULES:  # each in a fresh interpreter: an earlier import must not hide a cycle
        proc = subprocess.run([sys.executable, "-c", code, name], cwd=ROOT, capture_output=True, text=True)
        if proc.returncode:
            failures.append(f"{name}: {proc.stderr.strip().splitlines()[-1]}")
    assert failures == []


def test_no_import_cycle_even_counting_imports_inside_functions():
    graph = import_graph()
    assert ("npi_crawler.spiders.experts", "npi_crawler.spiders.npi") not in {
        (a, b) for a, targets in graph.items() for b in targets
    }
    for source, target in ALLOWED_CYCLE_EDGES:
        graph[source].discard(target)
    assert cycles(graph) == []


def test_the_cycle_finder_finds_cycles_made_by_lazy_imports():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    graph = import_graph()
    graph["npi_crawler.site.text"].add("npi_crawler.site.urls")  # as an import inside a function would
    assert ["npi_crawler.site.text", "npi_crawler.site.urls"] in cycles(graph)


def test_no_module_is_longer_than_500_lines():
    long = [
        f"{module_name(path)} ({n} lines)"
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    ]
    assert long == []


def test_the_site_package_runs_without_scrapy_and_twisted():
    site = sorted(module_name(p) for p in (PACKAGE / "site").rglob("*.py"))
    code = (
        "import importlib, sys\n"
        f"for name in {site!r}:\n    importlib.import_module(name)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'scrapy', 'twisted'}))"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"
    direct = [
        f"{module_name(path)}:{line}"
        for path in (PACKAGE / "site").rglob("*.py")
        for name, line in imports(path)
        if name.split(".")[0] in ("scrapy", "twisted")
    ]
    assert direct == []


def test_a_module_that_reads_pages_with_lxml_imports_no_scrapy():
    """Outside the spiders and the middlewares, parsing a page is Scrapy-free: testable on a
    saved page, usable by probe and snapshot without a crawler."""
    both = []
    for path in PACKAGE.rglob("*.py"):
        name = module_name(path)
        if name.startswith(("npi_crawler.spiders", "npi_crawler.middlewares")):
            continue
        libraries = {imported.split(".")[0] for imported, _line in imports(path)}
        if {"lxml", "scrapy"} <= libraries:
            both.append(name)
    assert both == []


def test_the_urls_and_text_of_the_site_need_only_the_standard_library():
    """The archive, search, citations and history read them; they must not pay for lxml."""
    light = {"npi_crawler.site", "npi_crawler.site.text", "npi_crawler.site.urls", "npi_crawler.site.notes"}
    heavy = []
    for name in sorted(light):
        path = PACKAGE / "site" / ("__init__.py" if name == "npi_crawler.site" else f"{name.rsplit('.', 1)[1]}.py")
        for imported, line in imports(path):
            top = imported.split(".")[0]
            if imported in MODULES and imported not in light or top not in ("npi_crawler", *sys.stdlib_module_names):
                heavy.append(f"{name}:{line} {imported}")
    assert heavy == []


def strings_matching(pattern: re.Pattern[str], outside: Path) -> list[str]:
    """module:line of every string constant ``pattern`` finds in a module not under ``outside``."""
    return [
        f"{module_name(path)}:{node.lineno}"
        for path in PACKAGE.rglob("*.py")
        if not path.is_relative_to(outside)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and pattern.search(node.value)
    ]


def test_parse_note_names_are_written_only_in_site_notes():
    assert strings_matching(NOTE_LITERAL, PACKAGE / "site" / "notes.py") == []


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


# The rules' matcher builds a throwaway in-memory FTS5 index of one batch of articles (its own
# connection, never the archive's file): the archive's SQL is still all in archive/.
SQL_OUTSIDE_THE_ARCHIVE = {"npi_crawler.rules.matching"}


def test_sql_lives_in_the_archive_package_only():
    found = strings_matching(SQL, PACKAGE / "archive")
    assert [place for place in found if place.split(":")[0] not in SQL_OUTSIDE_THE_ARCHIVE] == []


def test_no_function_is_longer_than_sixty_lines():
    long = [
        f"{module_name(path)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 60
    ]
    assert long == []


def test_the_type_checker_catches_a_wrong_record_field(tmp_path):
    """`make lint` runs mypy with the project's configuration: a misspelt field of the record the
    crawl hands the archive (or a wrong type for one) is an error, not a crash at run time."""
    wrong = tmp_path / "wrong_field.py"
    wrong.write_text(
        "from npi_crawler.archive.records import ArticleRecord\n\n\n"
        "def title(record: ArticleRecord) -> str:\n"
        "    return record.titel\n\n\n"
        "def store(record: ArticleRecord) -> ArticleRecord:\n"
        "    return ArticleRecord(url=record.url, lang=1, title=None, published=None, body='')\n",
        encoding="utf-8",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), "--no-incremental", str(wrong)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert '"ArticleRecord" has no attribute "titel"' in proc.stdout
    assert 'Argument "lang" to "ArticleRecord" has incompatible type "int"' in proc.stdout
