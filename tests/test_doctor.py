"""`npi-crawler doctor` and the health checks, on a healthy, a failing and a corrupted archive.

Real parts: an archive built by a real crawl of the replica, a real Apprise delivery to a local
HTTP endpoint, a real dead port, a real file with bytes overwritten."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from npi_crawler.archive import Archive
from npi_crawler.archive.runlock import run_lock
from npi_crawler.cli import cli
from npi_crawler.monitor.health import run_health
from tests.conftest import crawl, run_cli
from tests.endpoints import JsonSink
from tests.site import ReplicaServer, generate_site
from tests.test_cli import free_port


class Hook:
    """A local HTTP endpoint that records what Apprise's json:// posts to it."""

    def __init__(self, status: int = 200):
        self.received: list[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.received.append(
                    {"path": self.path, "auth": self.headers.get("Authorization"), **json.loads(body)}
                )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.port = self.httpd.server_address[1]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.close()


@pytest.fixture(scope="module")
def crawled(tmp_path_factory) -> Iterator[tuple[str, ReplicaServer]]:
    """One real crawl of the replica, shared by this module; the replica keeps serving."""
    db = str(tmp_path_factory.mktemp("crawled") / "npi.db")
    with ReplicaServer(generate_site(seed=1)) as replica:
        crawl(replica, db)
        yield db, replica


@pytest.fixture
def archive_copy(crawled, tmp_path) -> str:
    db = str(tmp_path / "npi.db")
    shutil.copy(crawled[0], db)
    os.chmod(db, 0o600)
    return db


def doctor(*args: str, env: dict | None = None):
    return CliRunner().invoke(cli, ["doctor", *args], env={"NPI_NOTIFY_URLS": "", **(env or {})})


def lines_of(result) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in result.output.splitlines()[:-1]:
        status, name = line[:4].strip(), line[6:19].strip()
        out.setdefault(name, []).append(status)
    return out


def test_healthy_archive_all_ok_and_a_test_notification_arrives(crawled, archive_copy, hook):
    _db, replica = crawled
    url = f"json://npi:s3cr3tpass@127.0.0.1:{hook.port}/hooks/t0ken1234"
    result = doctor(
        "--db", archive_copy, "--base-url", replica.url, env={"NPI_NOTIFY_URLS": url, "NPI_CONTACT": "ops@example.org"}
    )
    assert result.exit_code == 0, result.output
    checks = lines_of(result)
    assert set(checks) == {
        "settings",
        "contact",
        "permissions",
        "run lock",
        "integrity",
        "schema",
        "last run",
        "site robots",
        "site list",
        "notify",
    }
    assert all(s == ["ok"] for s in checks.values()), result.output
    assert result.output.splitlines()[-1] == "10 ok, 0 failed"
    assert "User-Agent: npi-crawler/" in result.output and "(ops@example.org; research archive)" in result.output
    # the site was asked with that User-Agent
    agents = {h["User-Agent"] for _m, path, _s, h in replica.log if path == "/robots.txt"}
    assert any("(ops@example.org; research archive)" in agent for agent in agents), agents
    # delivered for real, and no secret printed
    assert len(hook.received) == 1 and "doctor" in hook.received[0]["title"]
    assert "s3cr3tpass" not in result.output and "t0ken1234" not in result.output
    # the one redactor: scheme and host name, never the user or the port
    assert "json://127.0.0.1 (no tags: every alert): test notification delivered" in result.output
    assert str(hook.port) not in result.output and "npi:" not in result.output


def test_failing_site_and_failed_last_run(archive_copy):
    dead = f"http://127.0.0.1:{free_port()}/"
    crawl = run_cli("crawl", "--db", archive_copy, "--base-url", dead, "-s", "RETRY_TIMES=0")
    assert crawl.returncode == 1
    result = doctor("--db", archive_copy, "--base-url", dead, "--timeout", "5")
    assert result.exit_code == 1
    checks = lines_of(result)
    assert checks["site robots"] == ["FAIL"] and checks["site list"] == ["FAIL"]
    assert checks["last run"] == ["FAIL"] and "failed" in result.output
    assert checks["integrity"] == ["ok"] and checks["schema"] == ["ok"]
    # no channel on a researcher's archive (crawled, never watched): a plain info line, no failure
    assert checks["notify"] == ["info"] and "no channel configured" in result.output
    # no contact set: the placeholder is a warning, not a failure
    assert checks["contact"] == ["WARN"] and "set contact =" in result.output
    assert result.output.splitlines()[-1] == "5 ok, 3 failed, 1 warning"


def test_corrupted_archive_fails_integrity(crawled, archive_copy):
    _db, replica = crawled
    size = Path(archive_copy).stat().st_size
    assert size > 64 * 1024
    with open(archive_copy, "r+b") as f:  # garbage over the middle half of the file (every table's pages)
        f.seek(size // 4)
        f.write(b"\xde\xad\xbe\xef" * (size // 8))
    result = doctor("--db", archive_copy, "--base-url", replica.url, "--no-notify")
    assert result.exit_code == 1
    checks = lines_of(result)
    assert checks["integrity"] == ["FAIL"], result.output
    assert checks["site list"] == ["ok"]
    assert "Traceback" not in result.output
    # the other commands say so in one line too, and leave the file as it is
    damaged = Path(archive_copy).read_bytes()
    mark = len(replica.log)
    for args in (
        ["export", "--db", archive_copy],
        ["crawl", "--db", archive_copy, "--base-url", replica.url],
    ):
        run = run_cli(*args)
        assert run.returncode == 1
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"Error: {archive_copy} is damaged ("), run.stderr
        assert lines[0].endswith(f"run 'npi-crawler doctor --db {archive_copy}', then restore a backup")
    assert Path(archive_copy).read_bytes() == damaged
    assert replica.log[mark:] == []  # no crawl into a damaged archive


def test_missing_archive_and_loose_permissions(crawled, archive_copy, tmp_path):
    _db, replica = crawled
    result = doctor("--db", str(tmp_path / "none.db"), "--base-url", replica.url, "--no-notify")
    assert result.exit_code == 1 and "does not exist" in result.output
    os.chmod(archive_copy, 0o644)
    result = doctor("--db", archive_copy, "--base-url", replica.url, "--no-notify")
    assert result.exit_code == 1
    assert lines_of(result)["permissions"] == ["FAIL"] and "chmod 600" in result.output


def test_bad_notification_urls_fail_without_leaking_secrets(crawled, archive_copy):
    _db, replica = crawled
    dead = f"json://user:hunter2secret@127.0.0.1:{free_port()}/path/t0kenvalue"
    # as watch does: one URL that does not load and no channel is tried
    result = doctor(
        "--db", archive_copy, "--base-url", replica.url, env={"NPI_NOTIFY_URLS": f"nosuch://abc/def {dead}"}
    )
    assert result.exit_code == 1
    assert lines_of(result)["notify"] == ["FAIL"]
    assert "not a valid Apprise URL" in result.output
    # a channel that loads but does not answer: its own failure, scrubbed
    result = doctor("--db", archive_copy, "--base-url", replica.url, "--notify", dead)
    assert result.exit_code == 1 and lines_of(result)["notify"] == ["FAIL"]
    for output in (result.output,):
        assert "hunter2secret" not in output and "t0kenvalue" not in output and "user" not in output


def test_bad_settings_file_is_a_failed_check(crawled, archive_copy, tmp_path):
    _db, replica = crawled
    bad = tmp_path / "bad.toml"
    bad.write_text("lang = 'fr'\n")
    result = CliRunner().invoke(
        cli,
        ["--settings", str(bad), "doctor", "--db", archive_copy, "--base-url", replica.url, "--no-notify"],
    )
    assert result.exit_code == 1
    assert lines_of(result)["settings"] == ["FAIL"] and "'fr' is not one of" in result.output


def test_archive_from_a_newer_version_fails_schema(archive_copy, crawled):
    _db, replica = crawled
    conn = sqlite3.connect(archive_copy)
    conn.execute("INSERT INTO migrations VALUES ('999_from_the_future', '2030-01-01T00:00:00Z')")
    conn.commit()
    conn.close()
    result = doctor("--db", archive_copy, "--base-url", replica.url, "--no-notify")
    assert result.exit_code == 1
    assert lines_of(result)["schema"] == ["FAIL"] and "999_from_the_future" in result.output


# -- health, as `status` will use it ---------------------------------------------------------------


def _archive_with_runs(db_path: str, *statuses: str) -> Archive:
    archive = Archive.open(db_path)
    for status in statuses:
        run_id = archive.start_run(
            mode="incremental", base_url="https://npi.or.jp/", langs=["en"], sections=[]
        )
        if status != "running":
            archive.finish_run(run_id, status=status, counts={}, stats={})
    return archive


def test_health_of_ok_failed_and_empty_archives(db_path, tmp_path):
    archive = Archive.open(str(tmp_path / "empty.db"))
    assert not run_health(archive).ok and "no run recorded" in run_health(archive).problems[0]
    archive.close()
    archive = _archive_with_runs(db_path, "failed", "ok")
    assert run_health(archive).ok
    archive.close()
    archive = _archive_with_runs(db_path, "failed")
    assert [p.split(" failed")[0] for p in run_health(archive).problems] == [
        "run 3 (incremental, started " + archive.last_run()["started"] + ")"
    ]
    archive.close()


def test_health_tells_an_interrupted_run_from_a_stuck_one(db_path):
    archive = _archive_with_runs(db_path, "ok", "running")
    health = run_health(archive)
    assert not health.ok and "did not finish" in health.problems[0]  # nobody holds the lock
    with run_lock(db_path, "watch"):
        health = run_health(archive)
        assert health.ok and health.running.endswith(health.running.split("since ")[1])
        later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=7)
        health = run_health(archive, now=later)
        assert not health.ok and "is stuck" in health.problems[0]
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=3)
    archive.finish_run(2, status="ok", counts={}, stats={})
    assert (
        "is the schedule running" in run_health(archive, now=later, max_age=dt.timedelta(days=2)).problems[0]
    )
    archive.close()


@pytest.mark.parametrize("how", ["--config", "NPI_APPRISE_CONFIG", "--notify", "settings file"])
def test_doctor_tests_exactly_the_channels_watch_would_use(crawled, archive_copy, hook, tmp_path, how):
    """doctor takes its channels from where watch does: --notify, --config, NPI_APPRISE_CONFIG, the
    settings file's [notify] urls and NPI_NOTIFY_URLS; each gets one test message."""
    url = f"json://alice:secret@127.0.0.1:{hook.port}/hook/T0KEN{how[:3].strip('-')}"
    config = tmp_path / "channels.txt"
    config.write_text(f"admin={url}\n")
    settings = tmp_path / "s.toml"
    settings.write_text(f'[notify]\nurls = ["{url}"]\n')
    args, env, root = [], {"NPI_APPRISE_CONFIG": ""}, []
    if how == "--config":
        args = ["--config", str(config)]
    elif how == "NPI_APPRISE_CONFIG":
        env["NPI_APPRISE_CONFIG"] = str(config)
    elif how == "--notify":
        args = ["--notify", url]
    else:
        root = ["--settings", str(settings)]
    _db, replica = crawled
    result = CliRunner().invoke(
        cli, [*root, "doctor", "--db", archive_copy, "--base-url", replica.url, *args], env={"NPI_NOTIFY_URLS": "", **env}
    )
    assert result.exit_code == 0, result.output
    assert lines_of(result)["notify"] == ["ok"]
    assert len(hook.received) == 1 and hook.received[0]["path"].startswith("/hook/T0KEN")
    for secret in ("alice", "secret", "T0KEN", str(hook.port)):
        assert secret not in result.output


# -- channels, one line each (issue 21.5) ------------------------------------------------------------


def test_one_line_per_channel_told_apart_by_its_tags(crawled, archive_copy, tmp_path):
    """Four channels on one host (the issue's alerts.txt printed four identical lines): each line
    names the channel's tags, the one that fails is the one its line says."""
    _db, replica = crawled
    with JsonSink() as up, JsonSink() as down:
        down.status = 500
        config = tmp_path / "alerts.txt"
        config.write_text(
            f"policy={up.url('p')}\nall={up.url('a')}\nen={down.url('e')}\nadmin={up.url('o')}\n"
        )
        result = doctor("--db", archive_copy, "--base-url", replica.url, "--config", str(config))
        twins = doctor("--db", archive_copy, "--base-url", replica.url, "--notify", up.url("x"), "--notify", up.url("y"))
    notify = [line for line in result.output.splitlines() if line[6:19].strip() == "notify"]
    assert len(notify) == 4 and len(set(notify)) == 4, result.output
    assert "ok    notify        json://127.0.0.1 (tags: policy): test notification delivered" in notify
    assert "ok    notify        json://127.0.0.1 (tags: admin): test notification delivered" in notify
    (failed,) = [line for line in notify if line.startswith("FAIL")]
    assert failed.startswith("FAIL  notify        json://127.0.0.1 (tags: en): ") and "500" in failed
    assert result.exit_code == 1
    # untagged twins on one host: their order in the configuration tells them apart
    lines = [line for line in twins.output.splitlines() if "notify" in line[6:19]]
    assert [line[20:].split(": test")[0] for line in lines] == [
        "json://127.0.0.1 (no tags: every alert) #1",
        "json://127.0.0.1 (no tags: every alert) #2",
    ]
    assert twins.exit_code == 0, twins.output


def test_no_channel_fails_only_when_a_watch_is_meant(crawled, archive_copy, tmp_path):
    _db, replica = crawled
    env = {"NPI_CONTACT": "ops@example.org"}
    researcher = doctor("--db", archive_copy, "--base-url", replica.url, env=env)
    assert researcher.exit_code == 0, researcher.output
    assert lines_of(researcher)["notify"] == ["info"]
    assert researcher.output.splitlines()[-1] == "9 ok, 0 failed"
    settings = tmp_path / "npi-crawler.toml"
    settings.write_text('[watch]\nsection = ["policy", "industry"]\n')
    watcher = CliRunner().invoke(
        cli,
        ["--settings", str(settings), "doctor", "--db", archive_copy, "--base-url", replica.url],
        env={"NPI_NOTIFY_URLS": "", **env},
    )
    assert watcher.exit_code == 1 and lines_of(watcher)["notify"] == ["FAIL"]
    assert f"no channel configured (--notify, --config, [notify] urls, NPI_NOTIFY_URLS, NPI_APPRISE_CONFIG), but {settings} has [watch]" in watcher.output
    # an archive whose outbox has alerts waiting for a channel: a watch ran here without one
    conn = sqlite3.connect(archive_copy)
    conn.execute(
        "INSERT INTO alerts (created, kind, title, body, tags, status, attempts) "
        "VALUES ('2026-11-24T00:00:00Z', 'new', 't', 'b', 'all', 'pending', 0)"
    )
    conn.commit()
    conn.close()
    waiting = doctor("--db", archive_copy, "--base-url", replica.url, env=env)
    assert waiting.exit_code == 1 and "but 1 alert(s) wait in this archive's outbox" in waiting.output


def test_the_site_checked_is_the_one_the_archive_was_crawled_from(crawled, archive_copy):
    _db, replica = crawled
    mark = len(replica.log)
    result = doctor("--db", archive_copy, "--no-notify")  # no --base-url: the last run's
    assert result.exit_code in (0, 1)
    assert f"ok    site robots   {replica.url}robots.txt: ok" in result.output.splitlines()
    assert [p for _m, p, _s, _h in replica.log[mark:]][:1] == ["/robots.txt"]
    dead = f"http://127.0.0.1:{free_port()}/"
    elsewhere = doctor("--db", archive_copy, "--base-url", dead, "--no-notify", "--timeout", "5")
    assert lines_of(elsewhere)["site robots"] == ["FAIL"] and dead + "robots.txt" in elsewhere.output
