"""Run every benchmark and print a table: ``python -m benchmarks`` (``make bench``).

  static       the crawl benchmark that measures the crawler (benchmarks/crawl.py): the replica as
               static files served by nginx; its ceiling (wrk), bare Scrapy and `npi-crawler crawl`
               at 1,000 and 5,000 articles, the ratio, peak RSS (skipped with one line without nginx)
  crawl        full crawl of generated replicas (1,000 and 5,000 articles) served by the Python
               replica: pages/s of npi-crawler (watch) against a bare Scrapy spider over the same
               pages, and peak RSS of the crawl process (the replica is the bottleneck here)
  incremental  on the 1,000-article archive: a no-change run, a --full run (304s), k new articles
  archive      a synthetic archive of 100,000 articles: FTS query p50/p95, export of all rows
  crash        the crash test with the full count of SIGKILLs (tests/crash.py)
  writes       bytes a first crawl (300, 1,000, 5,000 articles) and a no-change watch write to
               disk, against what the archive grew by (benchmarks/writes.py); with --before DIR
               the checkout in DIR too, side by side

  latency      a no-change watch's CPU (against sqlite-utils --help) and bytes written, and a
               simulated day: detection latency of new, back-dated and edited articles and
               requests an hour under the shipped 5-minute schedule (benchmarks/latency.py); with
               --before DIR that checkout's hourly schedule beside it

Options: --only NAME[,NAME] to run some; --quick for a smoke run at small sizes; --before DIR.
``python -m benchmarks.crawl --articles 1000`` runs the static one alone.
The command under test is ``watch`` (crawl, then diff and deliver: what a watcher schedules); the
crash test runs ``watch`` against a local Apprise endpoint and counts repeated alerts.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.common import ROOT, machine, npi, print_table, row, run_measured
from benchmarks.crawl import bench_static
from benchmarks.latency import bench_day, bench_nochange
from benchmarks.writes import bench_writes
from npi_crawler.archive import Archive
from tests.crash import AlertSink, check_alerts_exactly_once, run_crash_test, watch_command
from tests.site import SECTIONS, ReplicaServer, Site, generate_site, new_article
from tests.site.model import EN_WORDS, JA_WORDS
from tests.site.render import list_page_url

COMMAND = "watch"  # takes the same --db/--base-url/--full as crawl


def run_project(db: str, url: str, *extra: str) -> dict:
    code, out, wall, rss = run_measured(npi(COMMAND, "--db", db, "--base-url", url, *extra))
    if code != 0:
        raise SystemExit(f"{COMMAND} failed ({code}): {out}")
    seconds = float(m.group(1)) if (m := re.search(r" in ([\d.]+) s", out)) else 0.0
    return {"wall": wall, "seconds": seconds or wall, "rss": rss, "out": out}


def warm(replica: ReplicaServer, site: Site) -> list[str]:
    """Render every page the crawl will ask for, so the replica serves from memory."""
    paths = ["/robots.txt"] + [a.path for a in site.live()]
    for lang in ("ja", "en"):
        for section in SECTIONS:
            paths += [list_page_url(lang, section, i + 1) for i in range(len(site.list_pages(lang, section)))]
    for path in paths:
        replica._render(path)
    return paths


# -- crawl ------------------------------------------------------------------------------------------


def bench_crawl(sizes: tuple[int, ...], workdir: Path, incremental_k: int | None = None) -> None:
    """Full crawls; with ``incremental_k``, the incremental figures on the first (smallest) archive,
    against the same replica (same base URL, so the archive's URLs are the site's)."""
    for n in sizes:
        site = generate_site(seed=5, n_articles=n, per_page=20)
        with ReplicaServer(site, cache_pages=True) as replica:
            paths = warm(replica, site)
            raw = subprocess.run(
                [sys.executable, "-m", "benchmarks.raw_client", replica.url],
                input="\n".join(paths),
                capture_output=True,
                text=True,
                cwd=ROOT,
                check=True,
            )
            ceiling = json.loads(raw.stdout)
            db = str(workdir / f"crawl-{n}.db")
            mark = len(replica.log)
            project = run_project(db, replica.url)
            served = len(replica.log) - mark
            mark = len(replica.log)
            code, out, wall, bare_rss = run_measured(
                [sys.executable, "-m", "benchmarks.bare_spider", replica.url]
            )
            bare = json.loads(out.strip().splitlines()[-1])
            bare_served = len(replica.log) - mark
            p_rate = served / project["seconds"]
            b_rate = bare_served / bare["seconds"]
            row(f"crawl {n}", "pages on the replica (robots + lists + articles)", len(paths))
            row(
                f"crawl {n}",
                "replica ceiling: plain http.client, 8 threads: pages/s",
                f"{ceiling['responses'] / ceiling['seconds']:.0f}",
            )
            row(
                f"crawl {n}",
                "npi-crawler: requests, crawl s, pages/s",
                f"{served}, {project['seconds']:.1f}, {p_rate:.0f}",
            )
            row(
                f"crawl {n}",
                "bare Scrapy spider: requests, crawl s, pages/s",
                f"{bare_served}, {bare['seconds']:.1f}, {b_rate:.0f}",
            )
            row(f"crawl {n}", "ratio npi-crawler / bare", f"{p_rate / b_rate:.2f}")
            row(
                f"crawl {n}", "wall s incl. start-up: npi-crawler, bare", f"{project['wall']:.1f}, {wall:.1f}"
            )
            row(f"crawl {n}", "peak RSS MiB: npi-crawler, bare", f"{project['rss']}, {bare_rss}")
            if incremental_k is not None and n == sizes[0]:
                bench_incremental(db, site, replica, incremental_k)


# -- incremental ------------------------------------------------------------------------------------


def bench_incremental(db: str, site: Site, replica: ReplicaServer, k: int) -> None:
    lists = 2 * len(SECTIONS)

    def counted(*extra: str) -> tuple[list, dict]:
        mark = len(replica.log)
        result = run_project(db, replica.url, *extra)
        return replica.log[mark:], result

    log, _ = counted()
    row(
        "incremental",
        f"no-change run: requests (target {lists} first pages + robots = {lists + 1})",
        len(log),
    )
    log, result = counted("--full")
    answered_304 = sum(1 for entry in log if entry[2] == 304)
    row(
        "incremental",
        "no-change --full: requests, 304 answers, articles",
        f"{len(log)}, {answered_304}, {len(site.live())}",
    )
    row("incremental", "no-change --full: crawl s", f"{result['seconds']:.1f}")
    rng = random.Random(3)
    with replica.lock:
        added = [
            new_article(site, lang=rng.choice(["ja", "en"]), sections=[rng.choice(SECTIONS)], n=i)
            for i in range(k)
        ]
    replica.clear_cache()
    warm(replica, site)
    log, _ = counted()
    list_pages = sum(1 for entry in log if "/index" in entry[1])
    articles = sum(1 for entry in log if "/research/2" in entry[1])
    pdfs = sum(1 for entry in log if entry[1].endswith(".pdf"))  # the new articles' own PDFs
    row(
        "incremental",
        f"{k} new articles: requests (target <= k + their PDFs + list pages + 1)",
        f"{len(log)} = {articles} articles + {pdfs} PDFs + {list_pages} list pages + 1 "
        f"(<= {k + pdfs + list_pages + 1})",
    )
    assert articles == len(added), (articles, len(added))


# -- archive ----------------------------------------------------------------------------------------


def build_archive(path: str, n: int) -> float:
    started = time.monotonic()
    archive = Archive.open(path)
    rng = random.Random(1)
    now = "2026-11-24T00:00:00Z"

    def text(lang: str, sentences: int) -> str:
        if lang == "ja":
            return "".join(
                f"{a}をめぐる{b}と{c}の課題について検討した。"
                for a, b, c in (rng.sample(JA_WORDS, 3) for _ in range(sentences))
            )
        return " ".join(
            f"This paper examines {a}, {b} and {c}."
            for a, b, c in (rng.sample(EN_WORDS, 3) for _ in range(sentences))
        )

    rows, sections = [], []
    for i in range(n):
        lang = "ja" if i % 2 else "en"
        prefix = "/en" if lang == "en" else ""
        url = f"https://npi.or.jp{prefix}/research/{2000 + i % 26}/{1 + i % 12:02d}/{i:08d}.html"
        rows.append(
            (
                url,
                lang,
                text(lang, 1) + f" No. {i}",
                f"{2000 + i % 26}-{1 + i % 12:02d}-01",
                text(lang, 6),
                f"h{i}",
                now,
                now,
                now,
                now,
            )
        )
        sections.append((url, SECTIONS[i % len(SECTIONS)], now, now))
    with archive.atomic() as conn:
        conn.executemany(
            "INSERT INTO articles (url, lang, title, published, body, content_hash, first_seen, last_seen, "
            "last_fetched, last_changed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.executemany(
            "INSERT INTO article_sections (article_url, section, first_seen, last_seen) VALUES (?, ?, ?, ?)",
            sections,
        )
    archive.close()
    return time.monotonic() - started


def fts_search(conn: sqlite3.Connection, query: str) -> list:
    """Direct FTS5 query, ranked. ``bench_archive`` also times issue 5's ``npi_crawler.search``
    when it is there (after the merge)."""
    phrase = '"' + query.replace('"', '""') + '"'
    return conn.execute(
        "SELECT a.url, a.title FROM articles_fts JOIN articles a ON a.rowid = articles_fts.rowid "
        "WHERE articles_fts MATCH ? ORDER BY rank LIMIT 20",
        [phrase],
    ).fetchall()


def fts_first(conn: sqlite3.Connection, query: str) -> list:
    """The same match without ranking: what a "newest matches" listing costs."""
    phrase = '"' + query.replace('"', '""') + '"'
    return conn.execute(
        "SELECT a.url, a.title FROM articles_fts JOIN articles a ON a.rowid = articles_fts.rowid "
        "WHERE articles_fts MATCH ? LIMIT 20",
        [phrase],
    ).fetchall()


def bench_archive(n: int, workdir: Path, search: Callable = fts_search) -> None:
    path = str(workdir / f"archive-{n}.db")
    build = build_archive(path, n)
    size = os.path.getsize(path) // (1024 * 1024)
    row("archive", f"build {n} synthetic articles (one transaction): s, MiB", f"{build:.1f}, {size}")
    queries = [
        "経済安全保障",
        "半導体",
        "サプライチェーン",
        "インド太平洋",
        "量子技術",
        "semiconductors",
        "Taiwan Strait",
        "quantum technology",
        "climate change",
        "No. 4242",
    ]
    conn = sqlite3.connect(path)
    measured: list[tuple[str, Callable]] = [
        ("top 20 by rank", search),
        ("first 20 matches, unranked", fts_first),
    ]
    try:  # issue 5's search(archive, text, limit=20), once merged: what `npi-crawler search` runs
        from npi_crawler.research.search import search as project_search  # type: ignore[import-not-found]
    except ImportError:
        pass
    else:
        archive = Archive.open(path)
        measured.append(
            ("npi_crawler.search, 20 hits", lambda _conn, q: project_search(archive, q, limit=20))
        )
    for label, func in measured:
        timings = []
        for _ in range(5):
            for q in queries:
                started = time.perf_counter()
                func(conn, q)
                timings.append((time.perf_counter() - started) * 1000)
        timings.sort()
        p95 = timings[int(len(timings) * 0.95) - 1]
        row(
            "archive",
            f"FTS query ({label}), {len(timings)} queries: p50, p95 ms",
            f"{statistics.median(timings):.1f}, {p95:.1f}",
        )
    conn.close()
    code, _out, wall, rss = run_measured(npi("export", "--db", path, "-o", os.devnull))
    assert code == 0
    row(
        "archive", "export of all rows (JSONL): s, rows/s, peak RSS MiB", f"{wall:.1f}, {n / wall:.0f}, {rss}"
    )


# -- crash ------------------------------------------------------------------------------------------


def bench_crash(kills: int, workdir: Path) -> None:
    with AlertSink() as sink:
        report = run_crash_test(
            workdir,
            kills=kills,
            seed=20261124,
            command=watch_command,
            alert_sink=sink,
            alerts=check_alerts_exactly_once,
            ok_codes=(0, 3),
        )
    phases = {p: sum(1 for q, _ in report.kills if q == p) for p in ("startup", "crawl", "write", "delivery")}
    row(
        "crash",
        "SIGKILLs (startup, crawl, write, delivery), runs finished first",
        f"{len(report.kills)} ({phases['startup']}, {phases['crawl']}, {phases['write']}, "
        f"{phases['delivery']}), {report.finished_before_kill}",
    )
    row(
        "crash",
        "alerts received; repeated (kills in the delivery window)",
        f"{len(sink.received)}; {report.duplicates} ({phases['delivery']})",
    )
    row(
        "crash",
        "published, edited, removed during the test",
        f"{len(report.published)}, {len(report.edited)}, {len(report.removed)}",
    )
    row("crash", "final check: integrity ok, export == oracle (articles)", f"yes ({report.articles})")
    row("crash", "runs by status; seconds", f"{report.runs}; {report.seconds:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description="npi-crawler benchmarks")
    parser.add_argument("--only", default="static,crawl,incremental,archive,crash,writes,latency")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of the benchmarks")
    parser.add_argument("--before", metavar="DIR", type=Path, help="writes, static, latency: also the checkout in DIR")
    args = parser.parse_args()
    only = set(args.only.split(","))
    sizes = (200, 500) if args.quick else (1000, 5000)
    print(machine(), flush=True)
    with tempfile.TemporaryDirectory(prefix="npi-bench-") as tmp:
        workdir = Path(tmp)
        if "static" in only:
            bench_static(sizes, workdir, repeat=1 if args.quick else 3, before=args.before)
        if only & {"crawl", "incremental"}:
            k = (10 if args.quick else 25) if "incremental" in only else None
            bench_crawl(sizes if "crawl" in only else sizes[:1], workdir, incremental_k=k)
        if "archive" in only:
            bench_archive(10_000 if args.quick else 100_000, workdir)
        if "crash" in only:
            crash_dir = workdir / "crash"
            crash_dir.mkdir()
            bench_crash(4 if args.quick else 24, crash_dir)
        if "writes" in only:
            writes_dir = workdir / "writes"
            writes_dir.mkdir()
            bench_writes((100, 300) if args.quick else (300, 1000, 5000), writes_dir, args.before)
        if "latency" in only:
            before = args.before.resolve() if args.before else None
            bench_nochange(workdir, 100 if args.quick else 300, 1 if args.quick else 5, before)
            bench_day(workdir, 100 if args.quick else 300, 2 if args.quick else 24, before)
    print_table()


if __name__ == "__main__":
    main()
