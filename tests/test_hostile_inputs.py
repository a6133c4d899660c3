"""Issue 23, hostile inputs: what a user (or a mistake) can hand the command line, each refused
or survived in one line with the right exit code, nothing stored lost.

11 settings outside their range (a run that never sends a request, with the lock held);
13 files that are not files (FIFOs, devices), too big, too deep, or saved with a BOM;
16 tracebacks: a folder one cannot enter, bytes that are not UTF-8, an output encoding that
   cannot hold the text, a full disk, numbers too large, a damaged WARC pointer;
17 a misspelt key in an Apprise YAML config; 18 a clock set back.

Real processes, the replica over HTTP on 127.0.0.1 where a crawl is involved."""

from __future__ import annotations

import os
import re
import time

import pytest

from npi_crawler.constants import SETTING_RANGES
from tests.conftest import ROOT, run_cli
from tests.endpoints import JsonSink
from tests.site import ReplicaServer, generate_site


def one_line(result, code: int) -> str:
    assert result.returncode == code, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


# -- 11: "never send a request", spelt in other ways ------------------------------------------------

NEVER = [
    (["-s", "CONCURRENT_REQUESTS_PER_DOMAIN=0"], None, "CONCURRENT_REQUESTS_PER_DOMAIN takes a number from 1 to 64"),
    ([], "[scrapy]\nCONCURRENT_REQUESTS_PER_DOMAIN = 0\n", "CONCURRENT_REQUESTS_PER_DOMAIN takes a number from 1 to 64"),
    (["-s", "REACTOR_THREADPOOL_MAXSIZE=0"], None, "REACTOR_THREADPOOL_MAXSIZE takes a number from 1 to 100"),
    (["--delay", "1e308"], None, "'1e308' is more than 600 seconds"),
    ([], "delay = 1e308\n", "is more than 600 seconds"),
    (["-s", "DOWNLOAD_DELAY=1e12"], None, "DOWNLOAD_DELAY takes a number from 0 to 600"),
    (["-s", "AUTOTHROTTLE_START_DELAY=1e12"], None, "AUTOTHROTTLE_START_DELAY takes a number from 0 to 600"),
    (["-s", "DOWNLOAD_TIMEOUT=1e300"], None, "DOWNLOAD_TIMEOUT takes a number from 1 to 3600"),
    (["-s", "NPI_RETRY_AFTER_MAX=1e300"], None, "NPI_RETRY_AFTER_MAX takes a number from 0 to 3600"),
    (["-s", "DOWNLOAD_MAXSIZE=1e300"], None, "DOWNLOAD_MAXSIZE takes a number, 0 or more (default 20971520), at most"),
    (["-s", "CLOSESPIDER_PAGECOUNT=" + "9" * 400], None, "out of range; CLOSESPIDER_PAGECOUNT takes a number, 0 or more"),
]


@pytest.mark.parametrize("args,settings,fragment", NEVER, ids=[" ".join(a) or s.split("\n")[-2] for a, s, _ in NEVER])
def test_a_setting_that_would_never_send_a_request_is_refused_before_anything_opens(tmp_path, args, settings, fragment):
    site = generate_site(seed=1, n_articles=12)
    db = tmp_path / "npi.db"
    extra = []
    if settings is not None:
        (tmp_path / "s.toml").write_text(settings)
        extra = ["--settings", str(tmp_path / "s.toml")]
    with ReplicaServer(site) as replica:
        result = run_cli(*extra, "crawl", "--db", str(db), "--base-url", replica.url, *args, timeout=60)
        line = one_line(result, 2)
        assert fragment in line, line
        assert replica.log == []
    assert sorted(p.name for p in tmp_path.iterdir()) == (["s.toml"] if settings else [])  # no archive, no lock


def test_the_ranges_are_documented():
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    for name, (low, high) in SETTING_RANGES.items():
        assert re.search(rf"`{name}`\s*\|\s*{low:g} to {high:g}\b", text), name


# -- 13: files that are not files, too big, too deep, or with a BOM -------------------------------


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "pipe.toml"
    os.mkfifo(path)
    return path


def _file_args(kind: str, path: str) -> list[str]:
    """A command that reads ``path`` as the file of ``kind``, and nothing else of note."""
    if kind == "settings":
        return ["--settings", path, "status", "--db", "/nonexistent/npi.db"]
    if kind == "rules":
        return ["rules", "check", path, "--db", "/nonexistent/npi.db"]
    return ["notify", "--config", path, "--db", "/nonexistent/npi.db"]


@pytest.mark.parametrize("kind,code", [("settings", 2), ("rules", 2), ("config", 1)])
@pytest.mark.parametrize("source", ["fifo", "/dev/zero", "directory"])
def test_only_a_regular_file_is_read_as_settings_rules_or_apprise_config(tmp_path, fifo, kind, code, source):
    path = {"fifo": str(fifo), "/dev/zero": "/dev/zero", "directory": str(tmp_path)}[source]
    started = time.monotonic()
    result = run_cli(*_file_args(kind, path), timeout=30)  # a FIFO hung, /dev/zero grew to 24 GB
    line = one_line(result, code)
    assert time.monotonic() - started < 20
    what = {"fifo": "is a FIFO (named pipe), not a file", "/dev/zero": "is a character device, not a file", "directory": "is a directory, not a file"}
    assert what[source] in line and path in line, line


@pytest.mark.parametrize("kind,code", [("settings", 2), ("rules", 2), ("config", 1)])
def test_a_file_too_large_is_refused_unread(tmp_path, kind, code):
    path = tmp_path / "big"
    path.write_text("# " + "x" * 5_000_000 + "\n")
    line = one_line(run_cli(*_file_args(kind, str(path)), timeout=60), code)
    assert "is larger than" in line and "is it the right file?" in line, line


@pytest.mark.parametrize("kind,code,text", [
    ("settings", 2, "x = " + "[" * 3000 + "]" * 3000 + "\n"),
    ("settings", 2, "x = " + "{a = " * 3000 + "1" + "}" * 3000 + "\n"),
    ("rules", 2, "x = " + "[" * 3000 + "]" * 3000 + "\n"),
    ("config", 1, "urls: " + "[" * 3000 + "]" * 3000 + "\n"),
])
def test_a_file_nested_thousands_deep_is_one_line(tmp_path, kind, code, text):
    path = tmp_path / "deep"
    path.write_text(text)
    line = one_line(run_cli(*_file_args(kind, str(path))), code)
    assert "too deeply" in line, line


def test_files_saved_with_a_utf8_bom_are_read(tmp_path):
    """Notepad's default: a BOM before the first line. TOML refused it as "Invalid statement (at
    line 1, column 1)", Apprise could not tell the format."""
    bom = "\ufeff"
    with JsonSink() as sink:
        settings = tmp_path / "npi-crawler.toml"
        settings.write_text(bom + f'[notify]\nurls = ["{sink.url("settings")}"]\n', encoding="utf-8")
        rules = tmp_path / "rules.toml"
        rules.write_text(bom + '[[rule]]\nname = "chips"\nwords = ["semiconductor"]\n', encoding="utf-8")
        config = tmp_path / "channels.yml"
        config.write_text(bom + f"urls:\n  - {sink.url('yaml')}:\n      tag: admin\n", encoding="utf-8")
        checked = run_cli("--settings", str(settings), "rules", "check", str(rules), "--db", str(tmp_path / "npi.db"))
        assert "Invalid statement" not in checked.stderr and "chips" in checked.stdout + checked.stderr, checked.stderr
        doctor = run_cli("--settings", str(settings), "doctor", "--db", str(tmp_path / "npi.db"), "--config", str(config), "--base-url", "http://127.0.0.1:9/")
        assert f"ok    settings      {settings} is valid" in doctor.stdout, doctor.stdout
        assert sorted(p["path"] for p in sink.posts) == ["/settings", "/yaml"], doctor.stdout


# -- 17: a misspelt key in an Apprise YAML config ---------------------------------------------------


def test_a_misspelt_key_in_an_apprise_yaml_config_is_refused(tmp_path, db_path):
    from npi_crawler.archive import Archive

    with Archive.open(db_path) as archive:  # a baseline, then one pending alert for policy only
        run_id = archive.start_run(mode="incremental", base_url="", langs=(), sections=())
        archive.finish_run(run_id, status="ok", counts={}, stats={"npi/list/pages": 12})
        archive.conn.execute(
            "INSERT INTO alerts (created, kind, title, body, tags, status, attempts) "
            "VALUES ('2025-01-01T00:00:00Z', 'new', '[NPI policy/en] T', 'B', 'policy,en', 'pending', 0)"
        )
    with JsonSink() as sink:
        config = tmp_path / "channels.yml"
        config.write_text(f"urls:\n  - {sink.url('ops')}:\n      tga: admin\n  - {sink.url('team')}:\n      tag: policy\n")
        result = run_cli("notify", "--db", db_path, "--config", str(config))
        line = one_line(result, 1)
        assert f"--config {config}: entry 1 (json://127.0.0.1) has an unknown key 'tga' (did you mean 'tag'?)" in line
        doctor = run_cli("doctor", "--db", db_path, "--config", str(config), "--base-url", "http://127.0.0.1:9/")
        assert doctor.returncode == 1 and "FAIL  notify        --config" in doctor.stdout and "'tga'" in doctor.stdout
        assert sink.posts == []  # the untagged channel got nothing, nor did anyone
        top = tmp_path / "top.yml"
        top.write_text(f"tga: admin\nurls:\n  - {sink.url('ops')}\n")
        assert "the top level has an unknown key 'tga' (did you mean 'tag'?)" in one_line(run_cli("notify", "--db", db_path, "--config", str(top)), 1)
        listed = tmp_path / "listed.yml"
        listed.write_text(f"urls:\n  - {sink.url('ops')}:\n    - tag: admin\n    - tga: policy\n")
        assert "entry 1 (json://127.0.0.1) has an unknown key 'tga'" in one_line(run_cli("notify", "--db", db_path, "--config", str(listed)), 1)
        good = tmp_path / "good.yml"  # a service's own settings and extras are keys too
        good.write_text(f"urls:\n  - {sink.url('team')}:\n      tag: policy\n      format: text\n      +X-Team: npi\n")
        assert run_cli("notify", "--db", db_path, "--config", str(good)).returncode == 0
        assert [p["path"] for p in sink.posts] == ["/team"]
