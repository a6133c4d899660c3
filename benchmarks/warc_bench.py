"""WARC disk cost and write speed on replica pages. Prints figures; not a pass/fail test.

    .venv/bin/python benchmarks/warc_bench.py                  # a 1,000-article replica
    .venv/bin/python benchmarks/warc_bench.py --articles 200 --dir /tmp/warcs

Writes what a full first crawl fetches (every list page, article page and PDF, each as response +
request + metadata records), then what a ``--full`` re-check adds (a revisit per article for its
304), through ``WarcWriter`` with its fsync per exchange, and prints bytes per article.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from npi_crawler.archive.warc import DEFAULT_MAX_SIZE, WarcWriter  # noqa: E402
from tests.site import SECTIONS, generate_site  # noqa: E402
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=1000)
    parser.add_argument("--dir", help="WARC folder (default: a temporary one)")
    args = parser.parse_args()
    tmp = tempfile.TemporaryDirectory()
    directory = Path(args.dir or tmp.name)
    site = generate_site(seed=1, n_articles=args.articles, per_page=10)
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
