"""Issue 23.8: a channel's id in ``deliveries`` was 16 hex digits of an unsalted SHA-256 of its
Apprise URL; with the redacted label beside it, ``json://npiuser:hunter2@127.0.0.1:PORT/hook`` was
recovered offline by guessing. Ids are now keyed with a per-archive key kept outside the database,
and migration 010 rekeys an older archive's ids without sending anything twice.

Real watch and notify runs over the replica on loopback, real Apprise to local JSON sinks."""

from __future__ import annotations

import hashlib
import sqlite3
import stat
from pathlib import Path

import apprise
import pytest

from npi_crawler.monitor.messages import ATTENTION_TITLE
from tests.conftest import run_cli
from tests.endpoints import JsonSink
from tests.site import ReplicaServer, generate_site, new_article


def legacy_id(url: str) -> str:
    """What an older npi-crawler stored: a SHA-256 prefix of Apprise's normalized URL."""
    one = apprise.Apprise()
    assert one.add(url)
    [server] = one.find()
    return hashlib.sha256(server.url(privacy=False).encode()).hexdigest()[:16]


def deliveries(db_path: str) -> list[tuple[int, str, str, str]]:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute("SELECT alert_id, channel, label, status FROM deliveries ORDER BY alert_id, label").fetchall()
    finally:
        conn.close()


def guess(db_path: str, candidates: list[str]) -> list[str]:
    """An offline attacker with the database alone: every candidate URL whose unsalted hash is a
    stored channel id."""
    stored = {row[1] for row in deliveries(db_path)}
    return [url for url in candidates if legacy_id(url) in stored]


def test_a_channel_id_cannot_be_guessed_from_the_database_alone(tmp_path):
    site = generate_site(seed=5, n_articles=24, per_page=3)
    db_path = str(tmp_path / "npi.db")
    with JsonSink() as sink, ReplicaServer(site) as replica:
        port = sink.url().split(":")[2].split("/")[0]
        secret = f"json://npiuser:hunter2@127.0.0.1:{port}/hook"
        watch = ["watch", "--db", db_path, "--base-url", replica.url, "--notify", secret]
        assert run_cli(*watch).returncode == 0
        new_article(site, lang="en", sections=["policy"], n=1)
        result = run_cli(*watch)
        assert result.returncode == 0, result.stderr
        assert len(sink.posts) == 1
    candidates = [f"json://npiuser:{word}@127.0.0.1:{port}/hook" for word in ("password", "hunter1", "hunter2", "letmein")]
    assert guess(db_path, candidates) == []
    key = Path(db_path + ".channel-key")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    dump = "\n".join(sqlite3.connect(db_path).iterdump())
    assert key.read_text().strip() not in dump  # the key is outside the database


def test_an_older_archive_is_rekeyed_and_no_alert_is_sent_again(tmp_path):
    """An archive whose deliveries hold today's (unsalted) ids: one alert that both channels had,
    one that only A had (B was down), and a channel C no longer configured. After the upgrade A
    gets nothing again, B gets its missing alert once, and no old id remains."""
    site = generate_site(seed=5, n_articles=24, per_page=3)
    db_path = str(tmp_path / "npi.db")
    with JsonSink() as a, JsonSink() as b, JsonSink() as c, ReplicaServer(site) as replica:
        urls = {"a": a.url("a"), "b": b.url("b"), "c": c.url("c")}
        watch = ["watch", "--db", db_path, "--base-url", replica.url]
        assert run_cli(*watch, "--notify", urls["a"], "--notify", urls["b"], "--notify", urls["c"]).returncode == 0
        new_article(site, lang="en", sections=["policy"], n=1)
        assert run_cli(*watch, "--notify", urls["a"], "--notify", urls["b"], "--notify", urls["c"]).returncode == 0
        b.status = 500  # B is down for the next alert
        new_article(site, lang="en", sections=["policy"], n=2)
        assert run_cli(*watch, "--notify", urls["a"], "--notify", urls["b"]).returncode == 3  # a refused delivery is loud
        assert alert_counts(a, b, c) == (2, 1, 1)
        assert a.titles().count(ATTENTION_TITLE) == 1  # A, healthy, heard that B refused
        _as_made_by_an_older_version(db_path, urls)
        before = deliveries(db_path)
        assert {row[1] for row in before} == {legacy_id(u) for u in urls.values()}

        migrated = run_cli("migrate", "--db", db_path)
        assert migrated.returncode == 0, migrated.stderr
        after = deliveries(db_path)
        assert sorted((r[0], r[2], r[3]) for r in after) == sorted((r[0], r[2], r[3]) for r in before)  # every row kept
        assert not {row[1] for row in after} & {legacy_id(u) for u in urls.values()}  # no old id left
        assert guess(db_path, list(urls.values())) == []

        b.status = 200
        result = run_cli("notify", "--db", db_path, "--notify", urls["a"], "--notify", urls["b"])
        assert result.returncode == 0, result.stderr
        assert alert_counts(a, b, c) == (2, 2, 1)  # B got its missing alert, once
        assert sorted(alert_titles(a)) == sorted(alert_titles(b))
        again = run_cli("notify", "--db", db_path, "--notify", urls["a"], "--notify", urls["b"], "--notify", urls["c"])
        assert again.returncode == 0, again.stderr
        assert alert_counts(a, b, c) == (2, 2, 1)  # nothing pending: C gets nothing
    # C, no longer configured when the archive was migrated, kept its deliveries under its new id.
    from npi_crawler.archive.channelkey import channel_id

    key = bytes.fromhex(Path(db_path + ".channel-key").read_text().strip())
    ids = {row[1] for row in deliveries(db_path)}
    assert {channel_id(key, legacy_id(u)) for u in urls.values()} == ids


def alert_titles(sink: JsonSink) -> list[str]:
    """The article alerts a sink received (a healthy channel also hears of a failing one)."""
    return [title for title in sink.titles() if title != ATTENTION_TITLE]


def alert_counts(*sinks: JsonSink) -> tuple[int, ...]:
    return tuple(len(alert_titles(sink)) for sink in sinks)


def _as_made_by_an_older_version(db_path: str, urls: dict[str, str]) -> None:
    """Rewrite the deliveries as the version before the channel key stored them: the unsalted
    id of each channel, no migration 010, no key file."""
    key = Path(db_path + ".channel-key")
    if key.exists():
        from npi_crawler.archive.channelkey import channel_id

        secret = bytes.fromhex(key.read_text().strip())
        old = {channel_id(secret, legacy_id(u)): legacy_id(u) for u in urls.values()}
        conn = sqlite3.connect(db_path)
        with conn:
            for new, legacy in old.items():
                conn.execute("UPDATE deliveries SET channel = ? WHERE channel = ?", (legacy, new))
            conn.execute("DELETE FROM migrations WHERE name = '010_channel_ids'")
        conn.close()
        key.unlink()


@pytest.mark.parametrize("kind", ["damaged", "symlink", "directory"])
def test_a_bad_channel_key_is_one_line_and_nothing_is_sent(tmp_path, kind):
    db_path = str(tmp_path / "npi.db")
    key = Path(db_path + ".channel-key")
    if kind == "damaged":
        key.write_text("not a key\n")
    elif kind == "symlink":
        target = tmp_path / "elsewhere"
        target.write_text("0" * 64 + "\n")
        key.symlink_to(target)
    else:
        key.mkdir()
    from npi_crawler.archive import Archive

    with Archive.open(db_path) as archive:
        run_id = archive.start_run(mode="incremental", base_url="", langs=(), sections=())
        archive.finish_run(run_id, status="ok", counts={}, stats={"npi/list/pages": 12})
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute(
            "INSERT INTO alerts (created, kind, title, body, tags, status, attempts) "
            "VALUES ('2025-01-01T00:00:00Z', 'new', 'T', 'B', 'policy', 'pending', 0)"
        )
    conn.close()
    with JsonSink() as sink:
        result = run_cli("notify", "--db", db_path, "--notify", sink.url())
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "channel key" in lines[0] and "Traceback" not in result.stderr, result.stderr
        assert sink.posts == []
    if kind == "symlink":
        assert (tmp_path / "elsewhere").read_text() == "0" * 64 + "\n"


def test_a_dry_run_makes_no_key_file(tmp_path):
    from npi_crawler.archive import Archive

    db_path = str(tmp_path / "npi.db")
    with Archive.open(db_path) as archive:
        run_id = archive.start_run(mode="incremental", base_url="", langs=(), sections=())
        archive.finish_run(run_id, status="ok", counts={}, stats={"npi/list/pages": 12})
    with JsonSink() as sink:
        result = run_cli("notify", "--db", db_path, "--notify", sink.url(), "--dry-run")
        assert result.returncode == 0, result.stderr
    assert not Path(db_path + ".channel-key").exists()
