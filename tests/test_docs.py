"""Docs that tests keep honest: the schema page, the settings page, the README's commands."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from npi_crawler import settings as project_settings
from npi_crawler.archive import Archive
from npi_crawler.cli import cli

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def documented_schema() -> dict[str, set[str]]:
    """Tables (### `name`) and the columns in the first cell of their table rows."""
    tables: dict[str, set[str]] = {}
    current = None
    for line in (DOCS / "schema.md").read_text(encoding="utf-8").splitlines():
        if m := re.match(r"^### `(\w+)`", line):
            current = tables.setdefault(m[1], set())
        elif current is not None and line.startswith("| `"):
            current.update(re.findall(r"`(\w+)`", line.split("|")[1]))
    return tables


def test_schema_doc_matches_a_fresh_archive(db_path):
    archive = Archive.open(db_path)
    actual = {
        name: {c.name for c in archive.db[name].columns}
        for name in archive.db.table_names()
        if not re.search(r"_(fts|words|bigrams)_(data|idx|docsize|config|content)$", name)  # FTS5's shadow tables
    }
    archive.close()
    documented = documented_schema()
    actual_fts = actual.pop("articles_fts")
    assert documented.pop("articles_fts") == set() and actual_fts == {"title", "body"}
    assert documented == actual


def test_every_npi_setting_is_documented():
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    names = [n for n in dir(project_settings) if n.startswith("NPI_")]
    assert names
    for name in names:
        assert f"`{name}`" in text, f"{name} is not in docs/configuration.md"


def test_readme_documents_every_command_and_the_two_setup_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in cli.commands:
        assert f"npi-crawler {name}" in readme, f"README does not mention 'npi-crawler {name}'"
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in ("crawl", "test"):
        assert f"make {target}" in readme
        assert re.search(rf"^{target}:", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("doc", sorted(p.name for p in DOCS.glob("*.md")))
def test_docs_links_resolve(doc):
    text = (DOCS / doc).read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#:]+)\)", text):
        assert (DOCS / target).resolve().exists(), f"{doc} links to missing {target}"
