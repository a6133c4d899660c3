"""Shared fixtures: a replica of the site on loopback, archive paths, and running the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from npi_crawler.archive import Archive
from tests.site import ReplicaServer, Site, generate_site

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def site() -> Site:
    return generate_site(seed=1)


@pytest.fixture
def replica(site: Site) -> Iterator[ReplicaServer]:
    with ReplicaServer(site) as server:
        yield server


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "npi.db")


@pytest.fixture
def archive(db_path: str) -> Iterator[Archive]:
    """An archive file, open (the monitor's library tests)."""
    with Archive.open(db_path) as archive:
        yield archive


class CliRun:
    def __init__(self, proc: subprocess.CompletedProcess):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr

    def jsonl(self) -> list[dict]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]


def run_cli(*args: str, timeout: float = 180, env: dict | None = None) -> CliRun:
    """Run ``npi-crawler`` as a user would: a separate process (Scrapy's reactor runs once per
    process, and a crash of the crawler must not take the test run with it)."""
    proc = subprocess.run(
        [sys.executable, "-m", "npi_crawler", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})},
    )
    return CliRun(proc)


@pytest.fixture
def cli():
    return run_cli


def crawl(replica: ReplicaServer, db_path: str, *extra: str, command: str = "crawl") -> CliRun:
    """``npi-crawler crawl`` (or ``command``) of the replica into ``db_path`` through the real
    CLI, as a user runs it; it must succeed."""
    result = run_cli(command, "--db", db_path, "--base-url", replica.url, *extra)
    assert result.returncode == 0, result.stderr + result.stdout
    return result


def export_rows(db_path: str) -> list[dict]:
    """The archive's export, without first_seen/last_seen, as the oracle has it. In-process
    (click's CliRunner): export is read-only and imports no crawler, and a fresh interpreter per
    check was a good part of the suite's time."""
    from click.testing import CliRunner

    from npi_crawler.cli import cli

    result = CliRunner().invoke(cli, ["export", "--db", db_path])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    for row in rows:
        row.pop("first_seen")
        row.pop("last_seen")
    return rows
