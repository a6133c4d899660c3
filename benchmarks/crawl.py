"""The crawl benchmark that measures the crawler, not the replica.

The replica is rendered to static files (``static_site.py``) and served by nginx on 127.0.0.1
(``nginx.py``), which answers far faster than any Scrapy crawl can ask; its ceiling is measured with
wrk over the same pages. Then, for each size, a bare Scrapy spider (``bare_spider.py``) and
npi-crawler's full crawl (``npi-crawler crawl`` into an empty archive, the loopback defaults) fetch
the same pages, in turn, ``--repeat`` times; the median of each is reported with its peak RSS.

python -m benchmarks.crawl [--articles 1000,5000] [--repeat 3] [--before DIR]   (also part of ``make bench``)

``--before DIR`` also crawls with the checkout in DIR (its own ``.venv``: e.g. a worktree of an
earlier tag), in turn with the others, so its CPU per page is measured in the same run.

Needs nginx (``scripts/install-bench-deps``); without it, one line says so and nothing is run.
wrk is optional: without it the ceiling is measured by a small threaded Python client, which
shows a lower bound.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import ROOT, machine, npi, print_table, row, run_child
from benchmarks.nginx import Nginx, find_nginx
from benchmarks.static_site import write_static_site
from tests.site import generate_site

SKIP = "nginx not found: run scripts/install-bench-deps as root (apt-get install nginx wrk)"
WRK_SCRIPT = """\
local paths, i = {}, 0
init = function(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
end
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
"""


@dataclass
class Crawl:
    responses: int
    seconds: float  # the crawl's own elapsed time (Scrapy's), without start-up
    wall: float
    cpu: float  # user + system seconds of the whole process, start-up included
    rss: int  # MiB

    @property
    def rate(self) -> float:
        return self.responses / self.seconds

    @property
    def cpu_ms(self) -> float:
        """CPU per page: steadier than pages/s when other work shares the machine's cores."""
        return self.cpu * 1000 / self.responses


def ceiling(url: str, paths: list[str], workdir: Path, seconds: int = 5) -> tuple[float, str]:
    """The server's pages/s over the crawl's pages, by wrk (2 threads, 16 connections, the
    crawler's concurrency) or, without wrk, by the threaded Python client."""
    listing = workdir / "paths.txt"
    listing.write_text("\n".join(paths) + "\n")
    wrk = shutil.which("wrk")
    if wrk is None:
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.raw_client", url],
            input="\n".join(paths * 3),
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
        )
        figures = json.loads(out.stdout)
        return figures["responses"] / figures["seconds"], "http.client, 8 threads (no wrk)"
    script = workdir / "paths.lua"
    script.write_text(WRK_SCRIPT)
    argv = [wrk, "-t2", "-c16", f"-d{seconds}s", "-s", str(script), url, "--", str(listing)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"nginx answered errors to wrk:\n{out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return rate, f"wrk, 2 threads, 16 conns, {seconds} s"


def run_bare(url: str) -> Crawl:
    run = run_child([sys.executable, "-m", "benchmarks.bare_spider", url])
    if run.code != 0:
        raise SystemExit(f"the bare spider failed ({run.code}): {run.out}")
    figures = json.loads(run.out.strip().splitlines()[-1])
    return Crawl(figures["responses"], figures["seconds"], run.wall, run.cpu, run.rss)


def run_npi(url: str, db: Path, articles: int, tree: Path | None = None) -> Crawl:
    """``npi-crawler crawl`` into an empty archive; checks that it archived every article.
    ``tree``: the checkout to run (its .venv), else this one."""
    argv = npi("crawl", "--db", str(db), "--base-url", url)
    if tree is not None:
        argv[0] = str(tree / ".venv" / "bin" / "python")
    run = run_child(argv, cwd=tree or ROOT)
    if run.code != 0:
        raise SystemExit(f"npi-crawler crawl failed ({run.code}): {run.out}")
    seconds = float(re.search(r" in ([\d.]+) s", run.out).group(1))
    conn = sqlite3.connect(db)
    try:
        responses = conn.execute("SELECT responses FROM runs ORDER BY id DESC LIMIT 1").fetchone()[0]
        stored = conn.execute("SELECT count(*) FROM articles").fetchone()[0]
    finally:
        conn.close()
    if stored != articles:
        raise SystemExit(f"npi-crawler archived {stored} of {articles} articles:\n{run.out}")
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    return Crawl(responses, seconds, run.wall, run.cpu, run.rss)


def median_run(runs: list[Crawl]) -> Crawl:
    return sorted(runs, key=lambda c: c.rate)[len(runs) // 2]


def bench_size(binary: str, n: int, workdir: Path, repeat: int, before: Path | None = None) -> tuple[Crawl, Crawl]:
    """Rows for one size; returns the median (bare, npi-crawler) runs."""
    site = generate_site(seed=5, n_articles=n, per_page=20)
    root = workdir / f"site-{n}"
    paths = write_static_site(site, root)
    bench = f"static {n}"
    bare_runs: list[Crawl] = []
    npi_runs: list[Crawl] = []
    before_runs: list[Crawl] = []
    with Nginx(binary, root, workdir / f"nginx-{n}") as server:
        server_rate, tool = ceiling(server.url, paths, workdir / f"nginx-{n}")
        for i in range(repeat):  # in turn, so that a busy moment of the machine hits both alike
            steps = [lambda: bare_runs.append(run_bare(server.url))]
            steps.append(lambda: npi_runs.append(run_npi(server.url, workdir / f"crawl-{n}.db", n)))
            if before is not None:
                steps.append(lambda: before_runs.append(run_npi(server.url, workdir / f"before-{n}.db", n, before)))
            for step in steps if i % 2 == 0 else reversed(steps):
                step()
    bare, project = median_run(bare_runs), median_run(npi_runs)
    row(bench, "pages (robots + lists + articles + PDFs)", len(paths))
    row(bench, f"nginx ceiling ({tool}): pages/s", f"{server_rate:.0f}")
    row(bench, f"bare Scrapy, median of {repeat}: requests, crawl s, pages/s", _fmt(bare))
    row(bench, f"npi-crawler crawl, median of {repeat}: requests, crawl s, pages/s", _fmt(project))
    row(bench, "every run's pages/s: bare; npi-crawler", f"{_rates(bare_runs)}; {_rates(npi_runs)}")
    row(bench, "ceiling / bare (goal >= 3)", f"{server_rate / bare.rate:.1f}")
    row(bench, "ratio npi-crawler / bare (goal >= 0.9)", f"{project.rate / bare.rate:.2f}")
    cpu_bare, cpu_npi = (statistics.median(c.cpu_ms for c in runs) for runs in (bare_runs, npi_runs))
    row(
        bench,
        "CPU ms/page incl. start-up, median: npi-crawler, bare, bare/npi",
        f"{cpu_npi:.2f}, {cpu_bare:.2f}, {cpu_bare / cpu_npi:.2f}",
    )
    if before_runs:
        cpu_before = statistics.median(c.cpu_ms for c in before_runs)
        row(
            bench,
            f"before ({before.name}): pages/s (runs); CPU ms/page, bare/npi",
            f"{_rates(before_runs)}; {cpu_before:.2f}, {cpu_bare / cpu_before:.2f}",
        )
    row(bench, "wall s incl. start-up: npi-crawler, bare", f"{project.wall:.1f}, {bare.wall:.1f}")
    rss = (max(c.rss for c in runs) for runs in (npi_runs, bare_runs))
    row(bench, "peak RSS MiB (max of runs): npi-crawler, bare", ", ".join(map(str, rss)))
    shutil.rmtree(root)
    return bare, max(npi_runs, key=lambda c: c.rss)


def _fmt(crawl: Crawl) -> str:
    return f"{crawl.responses}, {crawl.seconds:.1f}, {crawl.rate:.0f}"


def _rates(runs: list[Crawl]) -> str:
    return ", ".join(f"{c.rate:.0f}" for c in runs)


def bench_static(sizes: tuple[int, ...], workdir: Path, repeat: int = 3, before: Path | None = None) -> None:
    binary = find_nginx()
    if binary is None:
        row("static", "skipped", SKIP)
        return
    # nginx's workers run unprivileged when started by root: they must reach the rendered site.
    os.chmod(workdir, 0o755)
    peaks = {n: bench_size(binary, n, workdir, repeat, before)[1].rss for n in sizes}
    if len(sizes) > 1:
        small, large = sizes[0], sizes[-1]
        row(
            "static",
            f"npi-crawler peak RSS {large} / {small} articles (goal <= 1.2)",
            f"{peaks[large] / peaks[small]:.2f} ({peaks[large]} / {peaks[small]} MiB)",
        )


def main() -> None:
    parser = argparse.ArgumentParser(description="npi-crawler against bare Scrapy, served by nginx")
    parser.add_argument("--articles", default="1000,5000", help="sizes, comma-separated (default 1000,5000)")
    parser.add_argument("--repeat", type=int, default=3, help="crawls of each kind per size (median shown)")
    parser.add_argument("--before", metavar="DIR", type=Path, help="also crawl with the checkout in DIR (its .venv)")
    args = parser.parse_args()
    try:
        sizes = tuple(int(n) for n in args.articles.split(","))
    except ValueError:
        parser.error("--articles takes numbers separated by commas, e.g. --articles 1000,5000")
    if args.repeat < 1 or min(sizes) < 10:
        parser.error("--repeat must be at least 1 and every size at least 10 articles")
    print(machine(), flush=True)
    with tempfile.TemporaryDirectory(prefix="npi-bench-crawl-") as tmp:
        bench_static(sizes, Path(tmp), args.repeat, args.before.resolve() if args.before else None)
    print_table()


if __name__ == "__main__":
    main()
