"""Hard faults from outside the crawl (issue 14): bad setting values, a full disk, an archive
locked or read-only, odd archive paths, planted symlinks, slow channels and secrets in logs.

Every case runs the real CLI in its own process against the replica on 127.0.0.1, on real files
(a small tmpfs for the full disk, when the tests run as root), and checks what a user sees (one
line, the exit code), what the archive records, and that nothing stored is lost.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from npi_crawler.cli.scrapy_values import typed_setting
from npi_crawler.errors import SettingsError
from tests.conftest import ROOT, export_rows, run_cli
from tests.site import ReplicaServer, generate_site

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
# Root ignores file permissions: run the CLI without the capabilities that let it (setpriv).
NO_DAC = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner",
          "--inh-caps", "-dac_override,-dac_read_search,-fowner"]  # fmt: skip
needs_root = pytest.mark.skipif(not IS_ROOT, reason="mounting a tmpfs needs root")
needs_setpriv = pytest.mark.skipif(
    not IS_ROOT or shutil.which("setpriv") is None,
    reason="a read-only file as root needs setpriv (util-linux) to drop CAP_DAC_OVERRIDE",
)


def one_line(result, *words: str) -> None:
    """Exactly one line on stderr, no traceback, holding every one of ``words``."""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def query(db_path: str | Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(f"file:{Path(db_path).resolve()}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def last_run(db_path: str | Path) -> dict:
    [row] = query(db_path, "SELECT id, status, errors, stats, problem FROM runs ORDER BY id DESC LIMIT 1")
    return {"id": row[0], "status": row[1], "errors": row[2], "stats": json.loads(row[3] or "{}"), "problem": row[4]}

# -- setting values: checked once, before anything is opened or locked ----------------------------

BAD_VALUES = [
    ("DOWNLOAD_TIMEOUT", "abc", "is not a number"),
    ("DOWNLOAD_MAXSIZE", "20MB", "is not a number"),
    ("DOWNLOAD_DELAY", "inf", "out of range"),
    ("DOWNLOAD_DELAY", "nan", "out of range"),
    ("AUTOTHROTTLE_MAX_DELAY", "-5", "out of range"),
    ("NPI_PDFS", "maybe", "is not true or false"),
    ("ITEM_PIPELINES", "[1, 2]", "takes a JSON object"),
]


@pytest.mark.parametrize("source", ["-s", "[scrapy]"])
@pytest.mark.parametrize("name,value,words", BAD_VALUES, ids=[f"{n}={v}" for n, v, _w in BAD_VALUES])
def test_a_bad_setting_value_is_one_line_and_exit_2_before_anything_is_touched(
    source, name, value, words, replica, tmp_path
):
    db = tmp_path / "npi.db"
    log = tmp_path / "run.log"
    args = ["watch", "--db", str(db), "--base-url", replica.url, "--log-file", str(log)]
    if source == "-s":
        result = run_cli(*args, "-s", f"{name}={value}")
        where = f"-s {name}={value}: "
    else:
        settings = tmp_path / "s.toml"
        settings.write_text(f"[scrapy]\n{name} = {value!r}\n".replace("'", '"'), encoding="utf-8")
        result = run_cli("--settings", str(settings), *args)
        where = f"{settings}: [scrapy] '{name}': "
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"Error: {where}"), result.stderr
    assert words in result.stderr and name in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == (["s.toml"] if source == "[scrapy]" else [])
    assert replica.log == []


@pytest.mark.parametrize(
    "name,value,expected",
    [
        ("DOWNLOAD_DELAY", "0.5", 0.5),  # Scrapy's default is the int 0, read with getfloat
        ("DOWNLOAD_TIMEOUT", "7", 7),
        ("CONCURRENT_REQUESTS", 2.0, 2),
        ("AUTOTHROTTLE_MAX_DELAY", "10", 10.0),
        ("DEPTH_PRIORITY", "-1", -1),  # priorities may be negative
        ("NPI_PDFS", "false", False),
        ("TELNETCONSOLE_ENABLED", "True", True),  # a bool whose default is the int 1
        ("ITEM_PIPELINES", '{"x.Y": 1}', {"x.Y": 1}),
        ("NPI_ALLOWED_DOMAINS", "a.example,b.example", "a.example,b.example"),
        ("USER_AGENT", "me", "me"),  # text: as given
        ("MY_OWN_SETTING", "anything", "anything"),  # a name neither Scrapy nor npi-crawler knows
    ],
)
def test_good_setting_values_become_what_scrapy_reads(name, value, expected):
    assert typed_setting(name, value, "-s") == expected


def test_typed_setting_refuses_a_bool_for_a_number():
    with pytest.raises(SettingsError, match="True is not a number"):
        typed_setting("DOWNLOAD_TIMEOUT", True, "s.toml: [scrapy] 'DOWNLOAD_TIMEOUT'")


# -- the archive refuses a write: a full disk, a lock held too long, a read-only file -------------


@contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def outcome_matches_the_row(result, db: Path) -> dict:
    """The one line says what the archive says of the run: failed, or left running."""
    run = last_run(db)
    if run["status"] == "running":
        assert f"run {run['id']} could not be finished and stays 'running'" in result.stderr
    else:
        assert run["status"] == "failed" and f"run {run['id']} is recorded as failed" in result.stderr
        if run["stats"]:
            assert run["stats"]["npi/errors/archive:write"] >= 1 and run["errors"] >= 1
        else:  # the full row did not fit: its status and problem alone did (RunState._fail_row)
            assert "is full" in run["problem"], run
    return run


@needs_root
def test_a_full_disk_is_one_line_naming_it_the_run_failed_and_nothing_lost(tmp_path):
    """A 2 MB tmpfs fills during the first crawl: exit 1, one line naming the file system, the
    run recorded as failed; the next run on the full disk is one line too (the run lock's holder
    line cannot be written); once there is room, a run stores every article."""
    # 2 MB holds the migrated empty archive and its WAL (1 MB did not once 012 and 015 came:
    # nothing was stored), not 200 articles
    site = generate_site(seed=3, n_articles=200)
    with ReplicaServer(site) as replica, tmpfs(tmp_path / "disk", "2m") as disk:
        db = disk / "npi.db"
        # Small batches, so that some commit before the disk fills (a refused batch is lost whole).
        args = ("watch", "--db", str(db), "--base-url", replica.url, "-s", "NPI_COMMIT_ITEMS=5")
        full = run_cli(*args)
        assert full.returncode == 1, full.stdout + full.stderr
        one_line(full, f"the disk holding {db} (the file system mounted at {disk}) is full", "free some space")
        outcome_matches_the_row(full, db)
        assert query(db, "PRAGMA integrity_check") == [("ok",)]
        stored = query(db, "SELECT count(*) FROM articles")[0][0]
        assert 0 < stored < len(site.live())
        again = run_cli(*args)
        assert again.returncode == 1
        one_line(again, "is full", str(disk))
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        healed = run_cli(*args)
        assert healed.returncode == 0, healed.stderr
        assert last_run(db)["status"] == "ok"
        assert export_rows(str(db)) == site.expected_export(replica.url)


HOLD = (
    "import sqlite3, sys, time\n"
    "conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)\n"
    "conn.execute('BEGIN EXCLUSIVE')\n"
    "print('held', flush=True)\n"
    "time.sleep(float(sys.argv[2]))\n"
)


@contextmanager
def write_lock_held(db: Path, seconds: float) -> Iterator[subprocess.Popen]:
    """Another program (a sqlite3 connection in BEGIN EXCLUSIVE) holds the archive's write lock."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(db), str(seconds)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_a_write_lock_held_at_the_start_is_one_line_and_nothing_is_requested(tmp_path):
    site = generate_site(seed=7, n_articles=24, per_page=2)
    db = tmp_path / "npi.db"
    with ReplicaServer(site) as replica:
        assert run_cli("crawl", "--db", str(db), "--base-url", replica.url).returncode == 0
        mark = len(replica.log)
        with write_lock_held(db, 45):
            started = time.monotonic()
            result = run_cli("watch", "--db", str(db), "--base-url", replica.url)
            took = time.monotonic() - started
        assert result.returncode == 1
        one_line(result, f"{db} is locked by another program", "for longer than 30 s")
        assert took < 40  # the busy timeout, once
        assert replica.log[mark:] == [] and len(query(db, "SELECT id FROM runs")) == 1


def test_a_write_lock_held_mid_crawl_makes_the_run_failed_and_the_next_run_stores_everything(tmp_path):
    """Before: two writes lost after the busy timeout and the run said ok with 0 errors."""
    site = generate_site(seed=7, n_articles=24, per_page=2)
    db = tmp_path / "npi.db"
    with ReplicaServer(site, delay=0.5) as replica:
        # Batches of two items: the archive shows articles (and frees its write lock) early on.
        batches = ["-s", "NPI_COMMIT_ITEMS=2"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "npi_crawler", "watch", "--db", str(db), "--base-url", replica.url, *batches],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (db.exists() and _articles(db) >= 2):
            time.sleep(0.02)
        assert proc.poll() is None, "the crawl ended before the lock was taken"
        with write_lock_held(db, 40):
            stdout, stderr = proc.communicate(timeout=180)
        result = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
        assert result.returncode == 1, stdout + stderr
        one_line(result, f"{db} is locked by another program")
        run = outcome_matches_the_row(result, db)
        assert run["status"] == "failed"  # the lock was gone by the time the run was finished
        rerun = run_cli("watch", "--db", str(db), "--base-url", replica.url)
        assert rerun.returncode == 0, rerun.stderr
        assert export_rows(str(db)) == site.expected_export(replica.url)


def _articles(db: Path) -> int:
    try:
        return query(db, "SELECT count(*) FROM articles")[0][0]
    except sqlite3.Error:
        return 0


@needs_setpriv
@pytest.mark.parametrize("what", ["file", "folder"])
def test_a_read_only_archive_is_one_line(what, replica, tmp_path):
    folder = tmp_path / "archive"
    folder.mkdir()
    db = folder / "npi.db"
    assert run_cli("crawl", "--db", str(db), "--base-url", replica.url).returncode == 0
    before = db.read_bytes()
    for leftover in folder.glob("npi.db?*"):
        leftover.unlink()
    (db if what == "file" else folder).chmod(0o444 if what == "file" else 0o555)
    try:
        proc = subprocess.run(
            [*NO_DAC, sys.executable, "-m", "npi_crawler", "watch", "--db", str(db), "--base-url", replica.url],
            cwd=ROOT, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )  # fmt: skip
    finally:
        folder.chmod(0o755)
        db.chmod(0o600)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    one_line(proc, f"{db} cannot be written", "check the permissions")
    assert db.read_bytes() == before


# -- archive paths with URI characters (the read-only checks open a file: URI) -------------------


def _crawled_archive(replica: ReplicaServer, folder: Path, name: str) -> Path:
    folder.mkdir()
    made = folder / "made.db"
    assert run_cli("crawl", "--db", str(made), "--base-url", replica.url).returncode == 0
    for side in folder.glob("made.db?*"):
        side.unlink()
    return made.rename(folder / name)


@pytest.mark.parametrize("name", ["dmg#1.db", "dmg?mode=rw.db", "dmg%41.db"])
def test_a_damaged_archive_named_with_uri_characters_is_refused_in_one_line(name, replica, tmp_path):
    """The quick check once opened ``file:…/dmg#1.db?mode=ro`` unescaped: another file (``dmg``,
    created empty) was checked, the damage passed, and the crawl crashed in 91 lines."""
    db = _crawled_archive(replica, tmp_path / "a", name)
    size = db.stat().st_size
    with open(db, "r+b") as f:  # garbage over pages in the middle of the file
        f.seek(size // 2 - 8192)
        f.write(b"\xde\xad\xbe\xef" * 4096)
    damaged = db.read_bytes()
    mark = len(replica.log)
    result = run_cli("watch", "--db", str(db), "--base-url", replica.url)
    assert result.returncode == 1
    one_line(result, f"{db} is damaged (", "npi-crawler doctor")
    assert db.read_bytes() == damaged and replica.log[mark:] == []
    # no stray file (``dmg``): only SQLite's own side files of a WAL archive, the run lock (a real
    # archive's: the run takes it before it reads a damaged page, as every run of it does; the
    # whole-file quick check is left to runs that crawl, so that a check finding nothing stays
    # cheap) and the WARC folder of the crawl that made the archive
    assert {p.name for p in db.parent.iterdir() if p.is_file()} <= {name, f"{name}-wal", f"{name}-shm", f"{name}.lock"}


@pytest.mark.parametrize("name", ["pct%41.db", "q?x=1.db", "h#1.db"])
def test_an_archive_named_with_uri_characters_runs_twice(name, site, replica, tmp_path):
    """A healthy ``pct%41.db`` was refused as damaged on its second run (``%41`` read as ``A``)."""
    db = tmp_path / "a" / name
    db.parent.mkdir()
    for _run in range(2):
        result = run_cli("watch", "--db", str(db), "--base-url", replica.url)
        assert result.returncode == 0, result.stderr
    assert export_rows(str(db)) == site.expected_export(replica.url)
    names = {p.name for p in db.parent.iterdir()}
    warc = Path(name).stem + "-warc"  # the pages as served, beside the archive
    assert names <= {name, f"{name}.lock", f"{name}-wal", f"{name}-shm", warc} and name in names


# -- the run lock: keyed on the real file, never through a planted symlink ------------------------


def test_two_symlinks_to_one_archive_cannot_run_at_once(replica, tmp_path):
    from npi_crawler.archive.runlock import run_lock

    real = tmp_path / "real" / "npi.db"
    real.parent.mkdir()
    one, two = tmp_path / "one.db", tmp_path / "two.db"
    one.symlink_to(real)
    two.symlink_to(real)
    with run_lock(one, "watch"):
        result = run_cli("watch", "--db", str(two), "--base-url", replica.url)
    assert result.returncode == 75
    one_line(result, f"another npi-crawler run is using {two}", f"pid {os.getpid()}")
    assert replica.log == []
    assert sorted(p.name for p in real.parent.iterdir()) == ["npi.db.lock"]  # beside the real file


def test_a_symlink_planted_at_the_lock_is_refused_and_its_target_untouched(replica, tmp_path):
    db = tmp_path / "npi.db"
    target = tmp_path / "precious.txt"
    target.write_text("keep me\n")
    Path(f"{db}.lock").symlink_to(target)
    result = run_cli("watch", "--db", str(db), "--base-url", replica.url)
    assert result.returncode == 1
    one_line(result, f"the run lock {db}.lock is a symbolic link; remove it and run again")
    assert target.read_text() == "keep me\n" and replica.log == []


# -- a slow channel: delivered once; no answer at all: an unknown outcome, never re-sent by itself -


def _watch(replica: ReplicaServer, db: Path, url: str, code: int = 0):
    result = run_cli("watch", "--db", str(db), "--base-url", replica.url, "--notify", url)
    assert result.returncode == code, result.stdout + result.stderr
    return result


def _proposals(site, k: int) -> list[str]:
    from tests.site import new_article

    made = [new_article(site, lang="en", sections=["policy"], n=i) for i in range(1, k + 1)]
    return [f"[NPI policy/en] {' '.join(a.title.split())}" for a in made]


def test_a_channel_answering_after_6_s_gets_each_alert_exactly_once_across_runs(site, replica, tmp_path):
    """Apprise gives up after 4 s by default: the alert was marked failed and re-sent every run."""
    from tests.endpoints import JsonSink

    db = tmp_path / "npi.db"
    with JsonSink() as sink:
        sink.delay = 6
        _watch(replica, db, sink.url())  # the baseline: nothing sent
        titles = _proposals(site, 2)
        for _run in range(2):
            _watch(replica, db, sink.url())
        assert sorted(sink.titles()) == sorted(titles)
    assert query(db, "SELECT status, count(*) FROM deliveries GROUP BY status") == [("sent", 2)]
    assert query(db, "SELECT status, count(*) FROM alerts GROUP BY status") == [("sent", 2)]


def test_no_answer_in_time_is_an_unknown_outcome_reported_and_resent_only_on_request(site, replica, tmp_path):
    """``rto=1`` (the URL's own read timeout wins) and a service that answers after 3 s: the
    message went out, so it is not re-sent by the next run; the channel gets nothing more in that
    run; status lists it; ``notify --resend-unknown`` sends it again."""
    from tests.endpoints import JsonSink

    db = tmp_path / "npi.db"
    with JsonSink() as sink:
        url = sink.url() + "?rto=1"
        _watch(replica, db, url)
        first, second = _proposals(site, 2)
        sink.delay = 3
        late = _watch(replica, db, url, code=3)
        assert len(sink.posts) == 1  # the second alert waits: this channel did not answer
        [unanswered] = sink.titles()
        assert "no answer: json://127.0.0.1: " in late.stdout and "within 1 s" in late.stdout
        one_line(late, "1 message(s) sent without an answer", "notify --resend-unknown")
        sink.delay = 0
        _watch(replica, db, url)  # the other alert goes; the unanswered one is not re-sent
        assert sorted(sink.titles()) == sorted([first, second])
        status = run_cli("status", "--db", str(db))
        assert status.returncode == 0, status.stderr
        assert "1 message(s) sent without an answer" in status.stdout and unanswered in status.stdout
        resent = run_cli("notify", "--db", str(db), "--notify", url, "--resend-unknown")
        assert resent.returncode == 0, resent.stderr
        assert "1 delivery(ies) of unknown outcome made pending again" in resent.stdout
        assert sorted(sink.titles()) == sorted([first, second, unanswered])
        assert run_cli("notify", "--db", str(db), "--notify", url).returncode == 0
        assert len(sink.posts) == 3
    assert "without an answer" not in run_cli("status", "--db", str(db)).stdout


def test_channels_wait_30_s_for_an_answer_unless_their_url_says_otherwise_and_keep_their_id():
    """The outbox knows a channel by a hash of its URL: raising the timeout must not change it
    (every alert would go out again to a 'new' channel)."""
    import hashlib

    import apprise

    from npi_crawler.monitor.channels import READ_TIMEOUT, load_channels

    url = "json://127.0.0.1:9/hook"
    patient, own = load_channels([url, url + "?rto=2.5"])
    assert (patient.server.socket_read_timeout, own.server.socket_read_timeout) == (READ_TIMEOUT, 2.5)
    plain = apprise.Apprise()
    plain.add(url)
    [server] = plain.find()
    assert patient.fingerprint == hashlib.sha256(server.url(privacy=False).encode()).hexdigest()[:16]


# -- a channel's secrets never reach a log, stdout, stderr or the archive -------------------------

SLACK_STYLE = ("T0A1B2C3D", "B9Z8Y7X6W", "Xq3Lm9Tz0Kp8Ws2Nv7Rb4Hd1")  # team, bot, token: path segments


def test_verbose_log_file_output_and_archive_never_hold_a_channel_secret(site, replica, tmp_path):
    """``watch --verbose --log-file`` wrote urllib3's ``POST /hook/TOKEN HTTP/1.1``."""
    from tests.endpoints import JsonSink

    db, log = tmp_path / "npi.db", tmp_path / "watch.log"
    with JsonSink() as sink:
        port = sink.url().split(":")[2].split("/")[0]
        urls = [
            f"json://alice:s3cretpw@127.0.0.1:{port}/hook/T0KEN4f9a2c7e1b",
            f"json://127.0.0.1:{port}/services/{'/'.join(SLACK_STYLE)}",
        ]
        secrets = ["alice", "s3cretpw", "T0KEN4f9a2c7e1b", *SLACK_STYLE]
        env = {"NPI_NOTIFY_URLS": " ".join(urls)}
        args = ("watch", "--db", str(db), "--base-url", replica.url, "--verbose", "--log-file", str(log))
        assert run_cli(*args, env=env).returncode == 0
        _proposals(site, 1)
        result = run_cli(*args, env=env)
        assert result.returncode == 0, result.stderr
        assert {p["path"] for p in sink.posts} == {"/hook/T0KEN4f9a2c7e1b", "/services/" + "/".join(SLACK_STYLE)}
        noisy = run_cli("watch", "--db", str(db), "--base-url", replica.url, "--verbose", env=env)  # log on stderr
    text = log.read_text()
    archive = "\n".join(sqlite3.connect(db).iterdump())
    for secret in secrets:
        for where, written in [("log", text), ("stdout", result.stdout + noisy.stdout), ("stderr", noisy.stderr),
                               ("archive", archive)]:  # fmt: skip
            assert secret not in written, f"{secret} in the {where}"
    # the log is still a crawl log: the pages and the replica's URLs are all there
    assert "DEBUG: Crawled (200)" in text and replica.url.rstrip("/") + "/research/" in text


def test_log_records_are_masked_whatever_handler_writes_them(tmp_path):
    """Records made after the channels are loaded, by any logger, through a handler installed
    afterwards (as Scrapy's is): the secret is masked, the rest kept, exceptions included."""
    import logging

    from npi_crawler.monitor.channels import load_channels

    load_channels(["json://127.0.0.1:9/hook/Zt7Pq2Wm9Rx4"])
    handler = logging.FileHandler(tmp_path / "any.log")
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    logger = logging.getLogger("some.library")
    logger.addHandler(handler)
    try:
        logger.warning('http://127.0.0.1:9 "POST /hook/%s HTTP/1.1" 200 0', "Zt7Pq2Wm9Rx4")
        try:
            raise ValueError("bad token Zt7Pq2Wm9Rx4")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
        handler.close()
    text = (tmp_path / "any.log").read_text()
    assert "Zt7Pq2Wm9Rx4" not in text
    assert '"POST /****/**** HTTP/1.1" 200 0' in text and "ValueError: bad token ****" in text
    assert logging.getLogger("urllib3").level >= logging.INFO


# -- doctor and the error scrubber ---------------------------------------------------------------


def _doctor_lines(result) -> dict[str, str]:
    return {line[6:19].strip(): line for line in result.stdout.splitlines()[:-1]}


def test_doctor_fails_a_symlinked_run_lock_like_the_run_would(replica, tmp_path):
    db = tmp_path / "npi.db"
    assert run_cli("crawl", "--db", str(db), "--base-url", replica.url).returncode == 0
    Path(f"{db}.lock").unlink()
    Path(f"{db}.lock").symlink_to(tmp_path / "elsewhere")
    result = run_cli("doctor", "--db", str(db), "--base-url", replica.url, "--no-notify")
    assert result.returncode == 1
    line = _doctor_lines(result)["run lock"]
    assert line.startswith("FAIL") and f"the run lock {db}.lock is a symbolic link" in line
    assert result.stdout.splitlines()[-1] == "8 ok, 1 failed, 1 warning"  # the warning: no contact set


@needs_setpriv
def test_doctor_fails_a_lock_file_another_user_owns_and_the_run_says_the_same(replica, tmp_path):
    """Doctor said '8 ok' while a .lock left by another user made every run fail."""
    db = tmp_path / "npi.db"
    assert run_cli("crawl", "--db", str(db), "--base-url", replica.url).returncode == 0
    lock = Path(f"{db}.lock")
    os.chown(lock, 65534, 65534)
    lock.chmod(0o600)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    python = [*NO_DAC, sys.executable, "-m", "npi_crawler"]
    doctor = subprocess.run([*python, "doctor", "--db", str(db), "--base-url", replica.url, "--no-notify"],
                            cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    line = _doctor_lines(doctor)["run lock"]
    assert doctor.returncode == 1 and line.startswith("FAIL"), doctor.stdout
    words = f"the run lock {lock} cannot be opened for writing (Permission denied; owner uid 65534, mode 0600)"
    assert words in line
    run = subprocess.run([*python, "watch", "--db", str(db), "--base-url", replica.url],
                         cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert run.returncode == 1
    one_line(run, words)


def test_doctor_with_an_unclosed_ipv6_bracket_in_a_channel_url_is_one_failed_check(replica, tmp_path):
    db = tmp_path / "npi.db"
    assert run_cli("crawl", "--db", str(db), "--base-url", replica.url).returncode == 0
    result = run_cli("doctor", "--db", str(db), "--base-url", replica.url, "--notify", "json://u:p4ss@[fe80::1/hook")
    assert result.returncode == 1 and result.stderr == "", result.stderr
    line = _doctor_lines(result)["notify"]
    assert line.startswith("FAIL") and "not a valid Apprise URL" in line
    assert "p4ss" not in result.stdout and "fe80" not in result.stdout


def test_a_scrubbed_failure_keeps_apprise_own_words_and_masks_the_secrets():
    """Apprise's settings in the URL (``method=POST``) are no secrets: 'JSON POST notification'
    stays readable, while a token that merely contains the word is masked."""
    from npi_crawler.monitor.channels import load_channels, send
    from tests.endpoints import JsonSink

    with JsonSink() as sink:
        sink.status = 500
        url = sink.url("h00k/POSTtoken9").replace("json://", "json://bob:pw123@") + "?method=POST"
        [channel] = load_channels([url])
        ok, error = send(channel, "title", "body")
    assert ok is False
    assert error.startswith("Failed to send JSON POST notification") and "error=500" in error, error
    assert not any(secret in error for secret in ("bob", "pw123", "POSTtoken9", "h00k"))
