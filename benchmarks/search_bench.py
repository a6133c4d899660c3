"""Search and export speed on a large synthetic archive. Prints figures; not a pass/fail test.

    .venv/bin/python benchmarks/search_bench.py                 # 100,000 articles in a temp dir
    .venv/bin/python benchmarks/search_bench.py --articles 20000 --db /tmp/bench.db --runs 30

Builds the archive through the project's own schema (``Archive.open`` runs every migration, so
the FTS5 triggers index the text as it is inserted), with executemany in one transaction: mixed
Japanese and English articles, one in ten linking a PDF whose text holds a unique word.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from npi_crawler.archive import Archive  # noqa: E402
from npi_crawler.research.search import search  # noqa: E402
from tests.site.model import EN_WORDS, JA_WORDS, SECTIONS  # noqa: E402

QUERIES = [
    ("EN word", "semiconductors", {}),
    ("EN phrase + filters", '"supply chains" energy', {"langs": ["en"], "sections": ["policy"]}),
    ("JA 3+ chars (半導体)", "半導体", {}),
    ("JA 6 chars (経済安全保障)", "経済安全保障", {"since": "2020"}),
    ("JA 2 chars (憲法), LIKE scan", "憲法", {}),
    ("JA 2 chars + 3 chars", "憲法 半導体", {}),
    ("PDF-only term", "pdfonlyterm{last_pdf}", {}),
]


def sentence(rng: random.Random, lang: str) -> str:
    if lang == "ja":
        a, b, c = rng.sample(JA_WORDS, 3)
        return f"{a}をめぐる{b}と{c}の課題について検討した。"
    a, b, c = rng.sample(EN_WORDS, 3)
    return f"This paper examines {a}, {b} and {c}."


def build(path: str, n: int, seed: int = 1) -> float:
    rng = random.Random(seed)
    archive = Archive.open(path)
    start = time.perf_counter()
    articles, sections, pdfs, texts = [], [], [], []
    now = "2026-11-25T00:00:00Z"
    for i in range(n):
        lang = "ja" if i % 2 else "en"
        y, m, d = rng.randint(2010, 2026), rng.randint(1, 12), rng.randint(1, 28)
        url = f"https://npi.or.jp/{'en/' if lang == 'en' else ''}research/{y}/{m:02d}/{d:02d}{i:08d}.html"
        if lang == "ja":
            a, b = rng.sample(JA_WORDS, 2)
            title = f"「{a}と{b}」第{i}回 研究会報告"
        else:
            a, b = rng.sample(EN_WORDS, 2)
            title = f"{a.capitalize()} and {b}: Study Group Report No. {i}"
        body = "\n\n".join(sentence(rng, lang) for _ in range(rng.randint(3, 8)))
        articles.append((url, lang, title, f"{y}-{m:02d}-{d:02d}", body, "x", now, now, now, now))
        for s in (
            {rng.choice(SECTIONS), rng.choice(SECTIONS)} if rng.random() < 0.2 else {rng.choice(SECTIONS)}
        ):
            sections.append((url, s, now, now))
        if i % 10 == 7:
            pdf = f"https://npi.or.jp/research/data/{i:040d}.pdf"
            pdfs.append((url, pdf, 0))
            texts.append((pdf, "ok", f"NPI report {i} on {rng.choice(EN_WORDS)} pdfonlyterm{i}", now, now))
    with archive.atomic() as conn:
        conn.executemany(
            "INSERT INTO articles (url, lang, title, published, body, content_hash, first_seen, last_seen, "
            "last_fetched, last_changed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            articles,
        )
        conn.executemany(
            "INSERT INTO article_sections (article_url, section, first_seen, last_seen) VALUES (?, ?, ?, ?)",
            sections,
        )
        conn.executemany("INSERT INTO pdfs (article_url, url, position) VALUES (?, ?, ?)", pdfs)
        conn.executemany(
            "INSERT INTO pdf_texts (url, status, text, first_fetched, last_fetched) VALUES (?, ?, ?, ?, ?)",
            texts,
        )
    archive.db.execute("ANALYZE")
    archive.close()
    return time.perf_counter() - start


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    k = (len(values) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20, help="timed runs per query (after one warm-up)")
    parser.add_argument("--db", help="archive to build (default: a temporary file)")
    args = parser.parse_args()
    tmp = tempfile.TemporaryDirectory()
    path = args.db or str(Path(tmp.name) / "bench.db")
    if Path(path).exists():
        sys.exit(f"{path} exists; give a new --db path")
    print(f"building {args.articles:,} articles in {path} ...", flush=True)
    seconds = build(path, args.articles)
    size = Path(path).stat().st_size / 1e6
    print(
        f"built in {seconds:.1f} s ({args.articles / seconds:,.0f} articles/s, FTS included); {size:.0f} MB"
    )

    archive = Archive.open(path)
    print(f"\nsearch latency over {args.runs} runs (limit 20, in-process):")
    print(f"  {'query':34} {'hits':>5} {'p50 ms':>8} {'p95 ms':>8}")
    last_pdf = (args.articles - 8) // 10 * 10 + 7  # the newest article with a PDF
    for label, query, filters in QUERIES:
        query = query.format(last_pdf=last_pdf)
        hits = search(archive, query, **filters)  # warm-up
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            search(archive, query, **filters)
            times.append((time.perf_counter() - t0) * 1000)
        print(f"  {label:34} {len(hits):>5} {percentile(times, 0.5):>8.1f} {percentile(times, 0.95):>8.1f}")

    for fmt in ("jsonl", "csv"):
        t0 = time.perf_counter()
        out = io.StringIO()
        rows = 0
        if fmt == "jsonl":
            for row in archive.iter_articles():
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                rows += 1
        else:
            writer = csv.writer(out)
            for row in archive.iter_articles():
                writer.writerow(
                    [json.dumps(v, ensure_ascii=False) if isinstance(v, list) else v for v in row.values()]
                )
                rows += 1
        elapsed = time.perf_counter() - t0
        print(
            f"\nexport {fmt}: {rows:,} rows in {elapsed:.2f} s ({len(out.getvalue()) / 1e6:.0f} MB)", end=""
        )
    print()
    archive.close()


if __name__ == "__main__":
    main()
