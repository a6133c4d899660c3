"""Search and export speed on a large synthetic archive. Prints figures; not a pass/fail test.

    .venv/bin/python benchmarks/search_bench.py                 # 100,000 articles in a temp dir
    .venv/bin/python benchmarks/search_bench.py --articles 20000 --db /tmp/bench.db --runs 30

Builds the archive through the project's own schema (``Archive.open`` runs every migration, so
the FTS5 triggers fill the trigram and word indexes as the text is inserted), with executemany in
one transaction: mixed Japanese and English articles, one in ten linking a PDF whose text holds a
unique word, one English article in four with an inflected or look-alike sentence (a separate
random stream: the rest of the corpus is the same as before the word index).

Prints, per query: which index ``search`` routes it to, its hits, and p50/p95 of the trigram
index alone and of ``search`` as routed; then the size of each full-text index and what the word
index and the trigram index each find for a few English words. ``--reuse`` times queries on an
archive built by an earlier run.
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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from npi_crawler.archive import Archive  # noqa: E402
from npi_crawler.research.search import _trigram_search, index_for, parse_query, search  # noqa: E402
from tests.site.model import EN_WORDS, JA_WORDS, SECTIONS  # noqa: E402

QUERIES = [
    ("EN word", "semiconductors", {}),
    ("EN word in 47k articles", "policy", {}),
    ("EN stem (sanction)", "sanction", {}),
    ("EN two words", "artificial intelligence", {}),
    ("EN phrase + filters", '"supply chains" energy', {"langs": ["en"], "sections": ["policy"]}),
    ("EN 2 chars (G7)", "G7", {}),
    ("EN fragment (semicon): fallback", "semicon", {}),
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


# Inflected and look-alike English words: what stemming finds, and what a substring finds besides.
INFLECTED = (
    "The G7 imposed sanctions on the regime.",
    "Several sanctioned entities were listed.",
    "Japan is sanctioning exports of chips.",
    "The measure is a sanction of last resort.",
    "Such conduct is sanctionable under the law.",
    "These policies reshape the alliance.",
    "Japan and its allies responded.",
    "The ministry finally published the guidelines.",
    "AI governance was discussed in Hiroshima.",
    "The trainees were taught to code.",
)


def build(path: str, n: int, seed: int = 1) -> float:
    rng = random.Random(seed)
    extra = random.Random(seed + 1)
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
        if lang == "en" and extra.random() < 0.25:
            body += "\n\n" + extra.choice(INFLECTED)
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


def timed(fn, runs: int) -> tuple[Any, float, float]:
    result = fn()  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return result, percentile(times, 0.5), percentile(times, 0.95)


def print_latency(archive: Archive, runs: int, articles: int) -> None:
    print(f"\nsearch latency over {runs} runs (limit 20, in-process), ms:")
    print(f"  {'query':34} {'route':>7} {'hits':>5} {'trigram p50':>11} {'p95':>6} {'search p50':>10} {'p95':>6}")
    last_pdf = (articles - 8) // 10 * 10 + 7  # the newest article with a PDF
    for label, text, filters in QUERIES:
        text = text.format(last_pdf=last_pdf)
        query = parse_query(text)
        trigram = {"langs": (), "sections": (), "since": None, "until": None, **filters}
        _, old50, old95 = timed(lambda q=query, f=trigram: _trigram_search(archive, q, f, 20), runs)
        hits, new50, new95 = timed(lambda q=text, f=filters: search(archive, q, **f), runs)
        print(
            f"  {label:34} {index_for(query):>7} {len(hits):>5} {old50:>11.1f} {old95:>6.1f} "
            f"{new50:>10.1f} {new95:>6.1f}"
        )


def print_sizes(archive: Archive, path: str) -> None:
    archive.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    print(f"\narchive file: {Path(path).stat().st_size / 1e6:.0f} MB; full-text indexes:")
    for name, size in archive.index_sizes().items():
        print(f"  {name:16} {size / 1e6:7.1f} MB")


def print_stemming(archive: Archive) -> None:
    """What each word finds through the word index and through the trigram index."""
    print("\narticles found (word index: stemmed words; trigram: substrings):")
    print(f"  {'query':10} {'words':>6} {'trigram':>8}  forms in the word index's hits (articles)")
    for term in ("sanction", "policy", "ally", "secur"):
        words = archive.count_matches("articles_words", f'"{term}"')
        trigram = archive.count_matches("articles_fts", f'"{term}"')
        print(f"  {term:10} {words:>6,} {trigram:>8,}  {archive.matched_forms(term)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20, help="timed runs per query (after one warm-up)")
    parser.add_argument("--db", help="archive to build (default: a temporary file)")
    parser.add_argument("--reuse", action="store_true", help="time queries on the --db an earlier run built")
    args = parser.parse_args()
    tmp = tempfile.TemporaryDirectory()
    path = args.db or str(Path(tmp.name) / "bench.db")
    if Path(path).exists() and not args.reuse:
        sys.exit(f"{path} exists; give a new --db path, or --reuse to time queries on it")
    if not args.reuse:
        print(f"building {args.articles:,} articles in {path} ...", flush=True)
        seconds = build(path, args.articles)
        size = Path(path).stat().st_size / 1e6
        print(f"built in {seconds:.1f} s ({args.articles / seconds:,.0f} articles/s, FTS included); {size:.0f} MB")

    archive = Archive.open(path)
    print_latency(archive, args.runs, args.articles)
    print_sizes(archive, path)
    print_stemming(archive)

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
