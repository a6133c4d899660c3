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


def readme_block(after: str) -> list[str]:
    """The commands of the first ```sh block after the line starting with ``after``."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```sh\n(.*?)```", readme[readme.index(after) :], re.S)[1]
    return [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_the_readme_tour_of_the_archive_runs_as_written_after_try_offline(tmp_path):
    """`make try-offline` (scripts/try-offline, here on a free port), then every command of the
    tour's reading block, verbatim, in a shell, with the archive name they default to."""
    import os
    import shutil
    import subprocess
    import sys

    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "PYTHONWARNINGS": "ignore"}
    offline = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "try-offline"), "--port", "0"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert offline.returncode == 0 and (tmp_path / "npi.db").exists(), offline.stderr
    alerts = (DOCS / "alerts.md").read_text(encoding="utf-8")
    (tmp_path / "rules.toml").write_text(re.findall(r"```toml\n(.*?)```", alerts, re.S)[0], encoding="utf-8")
    commands = readme_block("Reading the archive")
    assert len(commands) > 15 and any(c.startswith("npi-crawler serve") for c in commands)
    script = []
    for n, command in enumerate(commands, 1):
        if command.startswith("npi-crawler serve"):  # it serves until stopped: until it says where
            serve = re.sub(r"\s+#.*$", "", command).replace("serve", "serve --port 0", 1)
            script.append(f"({serve} 2>&1 & echo $! > serve.pid) | grep -m1 Serving")
            script.append("kill $(cat serve.pid)")
        elif command.startswith("sqlite3") and not shutil.which("sqlite3"):
            continue  # the one tool of the tour that is not npi-crawler's
        else:
            script.append(command)
        script.append(f'[ $? = 0 ] || {{ echo "FAILED: command {n} of the tour" >&2; exit 1; }}')
    run = subprocess.run(["bash", "-c", "\n".join(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Serving npi.db" in run.stdout and "no article matches" not in run.stderr
    for made in ("npi.jsonl", "proposals.csv", "versions.csv", "proposals.json", "policy-en.atom", "page.html"):
        assert (tmp_path / made).stat().st_size > 0, made
