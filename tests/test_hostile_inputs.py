"""Issue 23, hostile inputs: what a user (or a mistake) can hand the command line, each refused
or survived in one line with the right exit code, nothing stored lost.

11 settings outside their range (a run that never sends a request, with the lock held);
13 files that are not files (FIFOs, devices), too big, too deep, or saved with a BOM;
16 tracebacks: a folder one cannot enter, bytes that are not UTF-8, an output encoding that
   cannot hold the text, a full disk, numbers too large, a damaged WARC pointer;
17 a misspelt key in an Apprise YAML config; 18 a clock set back.

Real processes, the replica over HTTP on 127.0.0.1 where a crawl is involved."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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
    (["-s", "NPI_RETRY_AFTER_CAP=1e300"], None, "NPI_RETRY_AFTER_CAP takes a number from 0 to 86400"),
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
    def number(value: float) -> str:  # as the table writes it: 1000000, not 1e+06
        return str(value) if isinstance(value, int) else f"{value:g}"

    for name, (low, high) in SETTING_RANGES.items():
        assert re.search(rf"`{name}`\s*\|\s*{number(low)} to {number(high)}\b", text), name


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
    if kind == "page":
        return ["probe", "--html", path, "--url", "https://npi.or.jp/research/2024/01/01000000.html"]
    return ["notify", "--config", path, "--db", "/nonexistent/npi.db"]


@pytest.mark.parametrize("kind,code", [("settings", 2), ("rules", 2), ("config", 1), ("page", 2)])
@pytest.mark.parametrize("source", ["fifo", "/dev/zero", "directory"])
def test_only_a_regular_file_is_read_as_settings_rules_or_apprise_config(tmp_path, fifo, kind, code, source):
    path = {"fifo": str(fifo), "/dev/zero": "/dev/zero", "directory": str(tmp_path)}[source]
    started = time.monotonic()
    result = run_cli(*_file_args(kind, path), timeout=30)  # a FIFO hung, /dev/zero grew to 24 GB
    line = one_line(result, code)
    assert time.monotonic() - started < 20
    what = {"fifo": "is a FIFO (named pipe), not a file", "/dev/zero": "is a character device, not a file", "directory": "is a directory"}
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


# -- 16: tracebacks -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def crawled(tmp_path_factory):
    """A crawled replica (Japanese and English articles, WARC files), the replica still serving."""
    folder = tmp_path_factory.mktemp("crawled")
    db = folder / "npi.db"
    site = generate_site(seed=3, n_articles=24, per_page=4)
    with ReplicaServer(site) as replica:
        result = run_cli("crawl", "--db", str(db), "--base-url", replica.url)
        assert result.returncode == 0, result.stderr
        conn = sqlite3.connect(db)
        try:
            ja = conn.execute(
                "SELECT url FROM articles WHERE lang = 'ja' AND title GLOB '*[^ -~]*' ORDER BY url LIMIT 1"
            ).fetchone()[0]
        finally:
            conn.close()
        yield {"db": db, "replica": replica, "ja": ja, "warcs": folder / "npi-warc"}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def locked_folder():
    """An archive in a folder of mode 0700 owned by someone else (the shipped systemd unit's
    StateDirectoryMode=0700), and how to run the CLI as a user who is not its owner."""
    base = Path(tempfile.mkdtemp(prefix="npi-hostile-"))
    os.chmod(base, 0o755)
    folder = base / "state"
    folder.mkdir()
    from npi_crawler.archive import Archive

    Archive.open(folder / "npi.db").close()
    os.chmod(folder, 0o700)
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: no way to run as another user")
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    else:
        os.chmod(folder, 0o000)  # not root: the owner itself cannot enter a folder of mode 000
        prefix = []
    try:
        yield folder / "npi.db", prefix
    finally:
        os.chmod(folder, 0o700)
        shutil.rmtree(base)


def run_as(prefix: list[str], *args: str, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "HOME": "/tmp"}
    return subprocess.run(
        [*prefix, sys.executable, "-m", "npi_crawler", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, **kwargs
    )


def test_an_archive_folder_this_user_cannot_enter_is_one_line(locked_folder, crawled):
    db, prefix = locked_folder
    os.chmod(db.parent, 0o700)
    before = digest(db)
    os.chmod(db.parent, 0o700 if prefix else 0o000)
    replica = crawled["replica"]
    requests = len(replica.log)
    for args in (["status"], ["export"], ["search", "x"], ["crawl", "--base-url", replica.url]):
        result = run_as(prefix, *args, "--db", str(db))
        line = one_line(result, 1)
        assert f"{db} cannot be reached" in line and f"may not enter the folder {db.parent}" in line, line
    doctor = run_as(prefix, "doctor", "--db", str(db), "--base-url", replica.url, "--no-notify")
    assert doctor.returncode == 1 and doctor.stderr == "", doctor.stderr
    assert f"FAIL  archive       {db} cannot be reached" in doctor.stdout, doctor.stdout
    assert len(replica.log) - requests == 2  # doctor's robots.txt and list page; the crawl sent nothing
    os.chmod(db.parent, 0o700)
    assert digest(db) == before


@pytest.mark.parametrize("args,name", [
    (["search", "\udcff\udcfe"], "QUERY"),
    (["export", "--author", "\udcff"], "'--author'"),
    (["cite", "http://x/\udcff"], "URL"),
    (["history", "http://x/\udcff"], "URL"),
    (["status", "--db", "caf\udce9.db"], "'--db'"),
])
def test_bytes_that_are_not_utf8_in_an_argument_are_one_line(crawled, args, name):
    extra = [] if "--db" in args else ["--db", str(crawled["db"])]
    line = one_line(run_cli(*args, *extra), 2)
    assert name in line and "is not UTF-8 text" in line, line


def test_any_output_encoding_writes_the_text_or_an_escape_never_a_traceback(crawled):
    db = str(crawled["db"])
    ascii_env = {"LC_ALL": "C", "PYTHONIOENCODING": "ascii"}
    result = run_cli("search", "半導体", "--format", "csv", "--db", db, env=ascii_env)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert "半導体" in result.stdout  # UTF-8, as click already wrote its own output there
    latin = {"PYTHONIOENCODING": "latin-1"}
    ja = crawled["ja"]
    for args in (["search", "半導体"], ["history", ja], ["cite", ja], ["snapshot", ja, "--format", "text"]):
        result = run_cli(*args, "--db", db, env=latin)
        assert result.returncode == 0, result.stderr
        warning = result.stderr.strip().splitlines()[-1]
        assert warning.startswith("warning: the output's encoding (latin-1) cannot hold some characters"), result.stderr
        assert "Traceback" not in result.stderr and re.search(r"\\u[0-9a-f]{4}", result.stdout), result.stdout[:200]


@pytest.mark.parametrize("args", [
    ["export", "-o", "/dev/full"],
    ["export", "--format", "bibtex", "-o", "/dev/full"],
    ["feed", "--section", "policy", "-o", "/dev/full"],
    ["search", "policy", ">"],
    ["export", ">"],
    ["status", ">"],
])
def test_a_full_output_disk_is_one_line(crawled, args):
    db = crawled["db"]
    before = digest(db)
    redirect = args[-1] == ">"
    command = [sys.executable, "-m", "npi_crawler", *(args[:-1] if redirect else args), "--db", str(db)]
    with open("/dev/full", "w") as full:
        proc = subprocess.run(command, cwd=ROOT, stdout=full if redirect else subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "/dev/full" in lines[0] and "is full" in lines[0], proc.stderr
    assert digest(db) == before


def test_a_log_file_on_a_full_disk_is_one_line_before_the_run(crawled, tmp_path):
    replica = crawled["replica"]
    requests = len(replica.log)
    result = run_cli("crawl", "--db", str(tmp_path / "npi.db"), "--base-url", replica.url, "--log-file", "/dev/full")
    line = one_line(result, 1)
    assert line.startswith("Error: --log-file: the disk holding /dev/full") and "is full" in line, line
    assert len(replica.log) == requests and not (tmp_path / "npi.db").exists()


@pytest.mark.parametrize("args", [
    ["search", "x", "--limit", "99999999999999999999"],
    ["feed", "--section", "policy", "--limit", "99999999999999999999"],
    ["status", "--runs", "99999999999999999999"],
    ["rules", "check", "--latest", "99999999999999999999"],
])
def test_a_number_too_large_is_one_line(crawled, args):
    line = one_line(run_cli(*args, "--db", str(crawled["db"])), 2)
    assert "is not in the range" in line, line


@pytest.mark.parametrize("damage", ["directory", "fifo", "huge length", "negative offset"])
def test_snapshot_of_a_damaged_warc_pointer_is_one_line(crawled, tmp_path, damage):
    db = tmp_path / "npi.db"
    shutil.copy(crawled["db"], db)
    warcs = tmp_path / "warcs"
    shutil.copytree(crawled["warcs"], warcs)
    ja = crawled["ja"]
    conn = sqlite3.connect(db)
    with conn:
        filename = conn.execute(
            "SELECT filename FROM warc_records WHERE url = ? AND record_type = 'response'", (ja,)
        ).fetchone()[0]
        if damage == "huge length":
            conn.execute("UPDATE warc_records SET record_length = 9000000000000000000 WHERE url = ?", (ja,))
        elif damage == "negative offset":
            conn.execute("UPDATE warc_records SET file_offset = -5 WHERE url = ?", (ja,))
    conn.close()
    if damage == "directory":
        (warcs / filename).unlink()
        (warcs / filename).mkdir()
    elif damage == "fifo":
        (warcs / filename).unlink()
        os.mkfifo(warcs / filename)
    result = run_cli("snapshot", ja, "--db", str(db), "--warc-dir", str(warcs), timeout=30)
    line = one_line(result, 1)
    expected = {
        "directory": "is a directory, not a file",
        "fifo": "is a FIFO (named pipe), not a file",
        "huge length": "ends before the record",
        "negative offset": "its warc_records row is damaged",
    }
    assert expected[damage] in line, line


# -- 18: the clock set back ------------------------------------------------------------------------------


def test_status_with_the_clock_set_back_says_so(crawled, tmp_path):
    db = tmp_path / "npi.db"
    shutil.copy(crawled["db"], db)
    conn = sqlite3.connect(db)
    with conn:  # the last run started 30 days ahead of this machine's clock
        conn.execute("UPDATE runs SET started = strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '+30 days')")
    conn.close()
    result = run_cli("status", "--db", str(db))
    first = result.stdout.splitlines()[0]
    assert "-" not in first.split("last run")[1].split(",")[0], first  # no "-2591990 s ago"
    assert "in the future" in first and "check the clock" in first, first
    assert result.returncode == 3 and "check the clock" in result.stderr, result.stderr


@pytest.mark.parametrize("command", [["status"], ["export"], ["search", "x"], ["crawl"], ["doctor", "--no-notify"]])
def test_an_archive_that_is_a_fifo_is_one_line_not_a_hang(tmp_path, command):
    """SQLite's open of a FIFO waits for a writer and retries through signals: status hung,
    deaf to SIGTERM, and crawl called the FIFO a damaged archive."""
    db = tmp_path / "npi.db"
    os.mkfifo(db)
    extra = ["--base-url", "http://127.0.0.1:9/"] if command[0] in ("crawl", "doctor") else []
    result = run_cli(*command, "--db", str(db), *extra, timeout=30)
    if command[0] == "doctor":
        assert result.returncode == 1 and f"FAIL  archive       {db} is a FIFO (named pipe), not a file" in result.stdout
    else:
        assert f"{db} is a FIFO (named pipe), not a file" in one_line(result, 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["npi.db"]  # no lock file, no WAL
