"""WARC disk cost and write speed on replica pages. Prints figures; not a pass/fail test.

    .venv/bin/python benchmarks/warc_bench.py                  # a 1,000-article replica
    .venv/bin/python benchmarks/warc_bench.py --articles 200 --dir /tmp/warcs
    .venv/bin/python benchmarks/warc_bench.py --crawl          # real crawls, WARC on and off

Writes what a full first crawl fetches (every list page, article page and PDF, each as response +
request + metadata records), then what a ``--full`` re-check adds (a revisit per article for its
304), through ``WarcWriter`` with its fsync per exchange, and prints bytes per article.

``--crawl`` measures the real thing instead: ``npi-crawler crawl`` of a replica (served from
memory) into two archives, one with WARC (the default) and one with ``--no-warc``, taking turns
(``--rounds``), then a ``--full`` re-check of each: crawl seconds with and without WARC, and the
WARC folder's bytes per article after the first crawl and per ``--full``.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from npi_crawler.archive.warc import DEFAULT_MAX_SIZE, WarcWriter  # noqa: E402
from tests.site import SECTIONS, ReplicaServer, generate_site  # noqa: E402
from tests.site.render import list_page_url, render  # noqa: E402

BASE = "https://npi.or.jp"
UA = {"User-Agent": "npi-crawler/0.1 (+https://github.com/npi-crawler)", "Accept-Encoding": "gzip, deflate"}


def crawl_paths(site) -> dict[str, list[str]]:
    lists = [
        list_page_url(lang, section, n + 1)
        for lang in ("ja", "en")
        for section in SECTIONS
        for n in range(len(site.list_pages(lang, section)))
    ]
    articles = [a.path for a in site.live()]
    pdfs = [p for a in site.live() for p in a.pdfs]
    return {"list": lists, "article": articles, "pdf": pdfs}


def headers(page) -> list[tuple[str, str]]:
    out = [("Content-Type", page.content_type), ("Server", "Apache")]
    out += [(k, v) for k, v in (("ETag", page.etag), ("Last-Modified", page.last_modified)) if v]
    return out


def _crawl_seconds(db: str, url: str, *extra: str) -> float:
    argv = [sys.executable, "-m", "npi_crawler", "crawl", "--db", db, "--base-url", url, *extra]
    out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return float(re.search(r": ok in ([\d.]+) s", out).group(1))


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir()) if folder.exists() else 0


def bench_crawls(n: int, rounds: int) -> None:
    """Real crawls of an n-article replica, WARC on and off, and what the WARC folder holds."""
    site = generate_site(seed=5, n_articles=n, per_page=20)
    seconds: dict[str, list[float]] = {"first on": [], "first off": [], "full on": [], "full off": []}
    with tempfile.TemporaryDirectory() as tmp, ReplicaServer(site, cache_pages=True) as replica:
        for i in range(rounds):
            for mode, extra in (("on", ()), ("off", ("--no-warc",))):
                db, folder = f"{tmp}/{mode}-{i}.db", Path(f"{tmp}/{mode}-{i}-warc")
                seconds[f"first {mode}"].append(_crawl_seconds(db, replica.url, *extra))
                files, first = len(list(folder.glob("*"))), _folder_bytes(folder)
                seconds[f"full {mode}"].append(_crawl_seconds(db, replica.url, "--full", *extra))
                if mode == "on":
                    sizes = (files, first, _folder_bytes(folder) - first)
    files, first, full = sizes
    n = len(site.live())
    print(f"real crawls of a {n:,}-article replica, {rounds} round(s) each, crawl seconds (Scrapy's elapsed time):")
    for name, values in seconds.items():
        print(f"  {name:10} {' '.join(f'{v:.1f}' for v in values)} s (median {statistics.median(values):.1f})")
    print(f"WARC after the first crawl: {first / 1e6:.2f} MB in {files} file(s) = {first / n:,.0f} bytes per article")
    print(f"each --full re-check (304s): +{full / 1e6:.2f} MB = {full / n:,.0f} bytes per article")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=1000)
    parser.add_argument("--dir", help="WARC folder (default: a temporary one)")
    parser.add_argument("--crawl", action="store_true", help="measure real crawls, WARC on and off")
    parser.add_argument("--rounds", type=int, default=3, help="with --crawl: crawls of each kind")
    args = parser.parse_args()
    if args.crawl:
        bench_crawls(args.articles, args.rounds)
    else:
        bench_writer(args.articles, args.dir)


def bench_writer(articles: int, folder: str | None) -> None:
    """What a first crawl and a --full re-check write, through WarcWriter alone."""
    tmp = tempfile.TemporaryDirectory()
    directory = Path(folder or tmp.name)
    site = generate_site(seed=1, n_articles=articles, per_page=10)
    paths = crawl_paths(site)
    sizes: dict[str, list[int]] = {kind: [] for kind in (*paths, "revisit")}
    html_bytes: dict[str, int] = dict.fromkeys(paths, 0)
    pointers = {}
    t0 = time.perf_counter()
    with WarcWriter(directory, run_id=1, max_size=DEFAULT_MAX_SIZE) as writer:
        for kind, kind_paths in paths.items():
            for path in kind_paths:
                page = render(site, path)
                before = writer._size
                pointer = writer.write_response(
                    BASE + path, status=200, headers=headers(page), body=page.body, request_headers=UA
                )
                sizes[kind].append(writer._size - before)
                html_bytes[kind] += len(page.body)
                pointers[path] = (pointer, page)
        first = time.perf_counter() - t0
        first_total = sum(p.stat().st_size for p in directory.iterdir())
    with WarcWriter(directory, run_id=2) as writer:
        for path in paths["article"]:
            pointer, page = pointers[path]
            before = writer._size
            writer.write_revisit(
                BASE + path, refers_to=pointer, headers=headers(page), request_headers=UA, metadata={"run": 2}
            )
            sizes["revisit"].append(writer._size - before)
    total = sum(p.stat().st_size for p in directory.iterdir())
    n = len(paths["article"])
    exchanges = sum(len(v) for k, v in sizes.items() if k != "revisit")
    print(
        f"replica of {n:,} articles: {exchanges:,} exchanges written in {first:.1f} s "
        f"({exchanges / first:,.0f}/s with fsync each)"
    )
    print(f"  {'records':10} {'count':>6} {'served KB':>10} {'WARC B/each':>12} {'ratio':>6}")
    for kind, values in sizes.items():
        if not values:
            continue
        served = html_bytes.get(kind, 0) / 1000
        ratio = f"{sum(values) / (served * 1000):.2f}" if served else "-"
        print(
            f"  {kind:10} {len(values):>6,} {served:>10,.0f} {sum(values) / len(values):>12,.0f} {ratio:>6}"
        )
    print(
        f"first full crawl: {first_total / 1e6:.2f} MB = {first_total / n:,.0f} bytes per article "
        f"(list pages and PDFs included)"
    )
    print(
        f"each --full re-check (all 304): +{(total - first_total) / 1e6:.2f} MB = "
        f"{(total - first_total) / n:,.0f} bytes per article"
    )


if __name__ == "__main__":
    main()
