"""Crash safety: kill the crawler with SIGKILL at random (seeded) moments while the site changes,
restart it, and check that the archive is intact and complete, and its WARC files with it: after
every kill each pointer SQLite holds reads back with its digest, and in the end warcio reads every
file to its last record and every stored version has its record. The same rounds with SIGTERM or
SIGINT (``stop_signal``) check that a stop is a clean exit: the process ends with 128 + the
signal's number within the stop bound, no run stays ``running``, and no alert is ever repeated
(a stop waits for the delivery it interrupts to be recorded).

Used by ``tests/test_crash.py`` (a reduced count of kills, for CI) and by the benchmark command
``python -m benchmarks`` (the full count). The command under test is a parameter:
``crawl_command`` checks the archive; ``watch_command`` with an ``AlertSink`` and
``check_alerts_exactly_once`` also checks that every new policy proposal reached the local Apprise
endpoint exactly once.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator

from npi_crawler.archive.records import WarcPointer
from npi_crawler.archive.warc import OPEN_SUFFIX, default_warc_dir, payload_digest, read_record
from tests.site import ReplicaServer, Site, generate_site, new_article

ROOT = Path(__file__).resolve().parent.parent

# argv for one run of the command under test: (db_path, base_url, full, workdir) -> argv
Command = Callable[[str, str, bool, Path], list[str]]


def crawl_command(db_path: str, base_url: str, full: bool, workdir: Path) -> list[str]:
    argv = [sys.executable, "-m", "npi_crawler", "crawl", "--db", db_path, "--base-url", base_url]
    return argv + (["--full"] if full else [])


def watch_command(db_path: str, base_url: str, full: bool, workdir: Path) -> list[str]:
    """``watch`` with an Apprise config pointing at an AlertSink (``workdir / "apprise.yml"``,
    written by ``run_crash_test`` when ``alert_sink`` is given)."""
    argv = [sys.executable, "-m", "npi_crawler", "watch", "--db", db_path, "--base-url", base_url]
    argv += ["--config", str(workdir / "apprise.yml")]
    return argv + (["--full"] if full else [])


class AlertSink:
    """A local HTTP endpoint that records every JSON body POSTed to it: the target of an Apprise
    ``json://127.0.0.1:PORT/alerts`` URL."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                try:
                    sink.received.append(json.loads(body or b"{}"))
                except ValueError:
                    sink.received.append({"raw": body.decode("utf-8", "replace")})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def apprise_url(self) -> str:
        return f"json://127.0.0.1:{self._httpd.server_address[1]}/alerts"

    def __enter__(self) -> AlertSink:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def check_alerts_exactly_once(site: Site, report: CrashReport, sink: AlertSink) -> None:
    """Every policy proposal published after the baseline run reached the endpoint (a message names
    its article's URL), and once: the only repeats allowed are one per kill that landed in the
    delivery window (the same alert can be caught there twice in a row) (SIGKILL right after the endpoint received a message, before the process could
    commit it as sent; docs/alerts.md). One the site removed again may have gone before any run
    saw it. Nothing outside the watched section (policy, both languages) was alerted. The number
    of repeats is kept in ``report.duplicates``."""
    published = report.published
    alerted_paths = [
        p for msg in sink.received for p in published if p in json.dumps(msg, ensure_ascii=False)
    ]
    proposals = [p for p in published if "policy" in site.articles[p].sections]
    for path in proposals:
        count = alerted_paths.count(path)
        assert count >= 1 or path in site.removed, f"{path} was never alerted"
    report.duplicates = sum(max(0, alerted_paths.count(p) - 1) for p in set(proposals))
    # Only SIGKILL has a window: a stop signal waits for the delivery to be recorded.
    window_kills = sum(1 for phase, _ in report.kills if phase == "delivery") if report.sigkill else 0
    assert report.duplicates <= window_kills, (
        f"{report.duplicates} repeated alerts but only {window_kills} kills in the delivery window"
    )
    others = set(alerted_paths) - set(proposals)
    assert not others, f"alerted outside the watched section: {sorted(others)}"
    assert len(sink.received) == len(alerted_paths), "a message that names no published proposal"


STOP_BOUND = 10.0  # NPI_STOP_GRACE: the longest a stop may wait for transfers under way


@dataclass
class CrashReport:
    kills: list[tuple[str, str]] = field(default_factory=list)  # (phase, at)
    stop_seconds: list[float] = field(default_factory=list)  # signal to exit, per round
    exit_codes: list[int] = field(default_factory=list)  # per round that was hit
    finished_before_kill: int = 0
    runs: dict[str, int] = field(default_factory=dict)
    published: list[str] = field(default_factory=list)
    edited: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    articles: int = 0
    seconds: float = 0.0
    duplicates: int = 0  # alerts received twice (watch: kills in the delivery window)
    warc_pointers: int = 0  # most pointers to WARC records read back after a kill or at the end
    warc_records: int = 0  # records warcio read in the end
    warc_left_open: int = 0  # WARC files a kill left being written (finished by the next run)
    sigkill: bool = True


def _change_site(site: Site, rng: random.Random, round_no: int, report: CrashReport) -> None:
    """Between rounds the site moves on: new articles (often policy proposals), an edit, rarely a
    removal, as the real site does."""
    for i in range(rng.randint(1, 3)):
        sections = ["policy"] if rng.random() < 0.5 else [rng.choice(["diplomacy", "industry", "economy"])]
        article = new_article(site, lang=rng.choice(["ja", "en"]), sections=sections, n=round_no * 10 + i)
        report.published.append(article.path)
    live = sorted(a.path for a in site.live())
    if rng.random() < 0.5:
        path = rng.choice(live)
        site.edit(path, append=f"Addendum {round_no}.")
        report.edited.append(path)
    if rng.random() < 0.2:
        path = rng.choice(live)
        site.remove(path)
        report.removed.append(path)


def _kill_at(
    proc: subprocess.Popen,
    replica: ReplicaServer,
    rng: random.Random,
    expected_requests: int,
    wal: Path,
    sink: AlertSink | None = None,
    signum: int = signal.SIGKILL,
):
    """Wait for a random moment of the run, then SIGKILL it. Returns (phase, when) or None when the
    run finished first. Phases: ``startup`` (imports, opening or migrating the archive, recording
    the run), ``crawl`` (after the Nth request; requests and writes overlap), ``write`` (right
    after the Nth change of the WAL file seen, i.e. in the middle of a burst of article writes) and,
    with an AlertSink (``watch``), ``delivery`` (as soon as the endpoint has received a message: the
    window between sending and marking it sent)."""
    mark = len(replica.log)
    draw = rng.random()
    if sink is not None and draw < 0.25:
        phase, received = "delivery", len(sink.received)
        while len(sink.received) == received and proc.poll() is None:
            time.sleep(0.0005)
        when = f"message {received + 1}"
    elif draw < 0.2:
        phase, delay = "startup", rng.uniform(0.3, 2.5)
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.005)
        when = f"{delay:.2f}s"
    elif draw < 0.6:
        phase, n = "crawl", rng.randint(1, max(2, expected_requests))
        while len(replica.log) - mark < n and proc.poll() is None:
            time.sleep(0.002)
        when = f"request {n}"
    else:
        phase, n = "write", rng.randint(1, 30)
        seen, last = 0, _stamp(wal)
        while seen < n and proc.poll() is None:
            stamp = _stamp(wal)
            if stamp != last:
                seen, last = seen + 1, stamp
            else:
                time.sleep(0.0005)
        when = f"WAL change {n}"
    if proc.poll() is not None:
        return None
    sent = time.monotonic()
    os.kill(proc.pid, signum)
    proc.wait(timeout=STOP_BOUND + 20)
    return phase, when, time.monotonic() - sent


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_size, st.st_mtime_ns


def run_crash_test(
    workdir: Path,
    *,
    kills: int,
    seed: int = 20261124,
    command: Command = crawl_command,
    alert_sink: AlertSink | None = None,
    alerts: Callable[[Site, CrashReport, AlertSink], None] | None = None,
    n_articles: int = 40,
    ok_codes: tuple[int, ...] = (0,),
    stop_signal: int = signal.SIGKILL,
) -> CrashReport:
    """Kill ``command`` ``kills`` times at random moments of runs over a changing replica, then
    let it finish and check the archive against the oracle. Raises AssertionError on a fault.
    ``ok_codes``: exit codes of a run that finished normally (``watch`` may also exit 3).
    ``stop_signal``: SIGKILL, or SIGTERM/SIGINT to check clean stops."""
    rng = random.Random(seed)
    report = CrashReport(sigkill=stop_signal == signal.SIGKILL)
    started = time.monotonic()
    db_path = str(workdir / "crash.db")
    site = generate_site(seed=seed % 1000, n_articles=n_articles, per_page=3)
    log = open(workdir / "crash-runs.log", "w")  # noqa: SIM115 - closed below
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    with ReplicaServer(site) as replica:
        if alert_sink is not None:
            (workdir / "apprise.yml").write_text(f"urls:\n  - {alert_sink.apprise_url}\n")

        def start(full: bool) -> subprocess.Popen:
            argv = command(db_path, replica.url, full, workdir)
            log.write(f"$ {' '.join(argv)}\n")
            log.flush()
            return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=log)

        if alert_sink is not None:
            # The first watch of an archive is its baseline (no alerts): let it finish, so that every
            # proposal published from now on must reach the endpoint exactly once.
            assert start(False).wait(timeout=300) in ok_codes, "baseline run failed"
        expected_requests = 13 + 12 * 4 + n_articles  # robots, list pages, articles: an upper bound
        round_no = 0
        while len(report.kills) < kills:
            round_no += 1
            if round_no > kills * 4:
                raise AssertionError(f"only {len(report.kills)} kills in {round_no} rounds")
            with replica.lock:
                _change_site(site, rng, round_no, report)
            full = rng.random() < 0.3
            proc = start(full)
            wal = Path(db_path + "-wal")
            killed = _kill_at(proc, replica, rng, expected_requests, wal, alert_sink, stop_signal)
            if killed is None:
                report.finished_before_kill += 1
                assert proc.returncode in ok_codes, f"run {round_no} failed; see {workdir / 'crash-runs.log'}"
                continue
            _record_kill(report, killed, proc.returncode, db_path)
            if stop_signal != signal.SIGKILL:
                _check_clean_stop(proc.returncode, stop_signal, ok_codes, db_path, killed[2])
        # Resume: an incremental run, then a full one (edits and removals are found by --full).
        for full in (False, True):
            proc = start(full)
            assert proc.wait(timeout=300) in ok_codes, f"resumed run failed; see {workdir / 'crash-runs.log'}"
        log.close()
        check_archive(db_path, site, replica.url, report)
        if alerts is not None and alert_sink is not None:
            alerts(site, report, alert_sink)
    report.seconds = time.monotonic() - started
    return report


def _record_kill(report: CrashReport, killed: tuple, code: int, db_path: str) -> None:
    """One kill in the report, and the WARC files as it left them checked against SQLite."""
    report.kills.append(killed[:2])
    report.stop_seconds.append(killed[2])
    report.exit_codes.append(code)
    report.warc_pointers = max(report.warc_pointers, check_warc_pointers(db_path))
    report.warc_left_open += len(list(default_warc_dir(db_path).glob(f"*{OPEN_SUFFIX}")))


def _check_clean_stop(code: int, signum: int, ok_codes: tuple[int, ...], db_path: str, seconds: float) -> None:
    """A stopped run exits with 128 + the signal (or finished first), within the stop bound, and
    leaves no run ``running`` (the signal may also land before npi-crawler installed its handler,
    in the first fraction of a second: then the default action, -signal, before any run row)."""
    assert code in (128 + signum, -signum, *ok_codes), f"exit {code} after signal {signum}"
    assert seconds < STOP_BOUND + 10, f"took {seconds:.1f} s to stop"
    conn = sqlite3.connect(db_path)
    try:
        running = conn.execute("SELECT id FROM runs WHERE status = 'running'").fetchall()
    finally:
        conn.close()
    assert running == [], f"runs left running after a stop: {running}"


def check_archive(db_path: str, site: Site, base_url: str, report: CrashReport) -> None:
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        statuses = [r["status"] for r in conn.execute("SELECT status FROM runs ORDER BY id")]
        report.runs = {s: statuses.count(s) for s in sorted(set(statuses))}
        # Runs killed after they were recorded are marked 'killed' by the next run (stopped ones
        # 'interrupted'); none stays 'running'; the two resumed runs are ok.
        assert statuses[-2:] == ["ok", "ok"], statuses[-5:]
        assert "running" not in statuses, statuses
        assert statuses.count("killed") + statuses.count("interrupted") <= len(report.kills)
        # Every revision is a real earlier version: no duplicate of the current text, none twice.
        for row in conn.execute(
            "SELECT a.url, a.content_hash AS current, group_concat(r.content_hash) AS hashes "
            "FROM articles a JOIN revisions r ON r.article_url = a.url GROUP BY a.url"
        ):
            hashes = row["hashes"].split(",")
            assert row["current"] not in hashes, row["url"]
            assert len(hashes) == len(set(hashes)), row["url"]
        # The FTS index matches its table (an interrupted write would leave them apart).
        n = conn.execute("SELECT count(*) FROM articles").fetchone()[0]
        assert conn.execute("SELECT count(*) FROM articles_fts").fetchone()[0] == n
    finally:
        conn.close()
    # Runs commit in batches, so kills may all land before a run's first commit: the pointers
    # the resumed runs wrote are read back too.
    report.warc_pointers = max(report.warc_pointers, check_warc_pointers(db_path))
    report.warc_records = check_warc_files(db_path)
    rows = _export(db_path)
    urls = [r["url"] for r in rows]
    assert len(urls) == len(set(urls)), "an article is stored twice"
    expected = site.expected_export(base_url)
    assert rows == expected, _diff(rows, expected)
    report.articles = len(rows)


def _export(db_path: str) -> list[dict]:
    proc = subprocess.run(
        [sys.executable, "-m", "npi_crawler", "export", "--db", db_path],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    for row in rows:
        row.pop("first_seen")
        row.pop("last_seen")
    return rows


def _diff(rows: list[dict], expected: list[dict]) -> str:
    got = {r["url"]: r for r in rows}
    want = {r["url"]: r for r in expected}
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    changed = sorted(u for u in set(got) & set(want) if got[u] != want[u])
    return f"missing {missing[:5]}, extra {extra[:5]}, different {changed[:5]}"


def _warc_rows(db_path: str, sql: str) -> list[sqlite3.Row]:
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def check_warc_pointers(db_path: str) -> int:
    """SQLite never points to a record that is not on disk: every pointer it holds reads back, its
    record id and digest checked (a killed writer's ``.open`` file included). Returns how many.
    A run killed before its archive had a schema (the first run, at start-up, on a slow machine)
    left no table, hence no pointer: 0."""
    if not _warc_rows(db_path, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'warc_records'"):
        return 0
    rows = _warc_rows(db_path, "SELECT w.*, f.directory FROM warc_records w JOIN warc_files f USING (filename)")
    for row in rows:
        read_record(row["directory"], WarcPointer.from_row(row))
    return len(rows)


def check_warc_files(db_path: str) -> int:
    """After the resumed runs: no file is left ``.open``, warcio reads every file to its end with
    every response's digest right, and each stored version (article, revision, PDF) has its
    record. Returns the number of records read."""
    directory = default_warc_dir(db_path)
    assert not list(directory.glob(f"*{OPEN_SUFFIX}")), "a killed run's WARC file was never finished"
    count = 0
    for path in sorted(directory.glob("*.warc.gz")):
        with open(path, "rb") as fh:
            for record in ArchiveIterator(fh):
                payload = record.raw_stream.read()
                if record.rec_type == "response":
                    assert record.rec_headers.get_header("WARC-Payload-Digest") == payload_digest(payload), path
                count += 1
    unrecorded = _warc_rows(
        db_path,
        "SELECT url, content_hash FROM articles UNION ALL SELECT article_url, content_hash FROM revisions "
        "UNION ALL SELECT url, sha256 FROM pdf_texts WHERE sha256 IS NOT NULL "
        "EXCEPT SELECT url, content_hash FROM warc_records",
    )
    assert not unrecorded, f"stored versions without a WARC record: {[tuple(r) for r in unrecorded[:5]]}"
    return count
