"""Search and export speed on a large synthetic archive. Prints figures; not a pass/fail test.

    .venv/bin/python benchmarks/search_bench.py                       # 100,000 articles in a temp dir
    .venv/bin/python benchmarks/search_bench.py --articles 20000 --runs 30
    .venv/bin/python benchmarks/search_bench.py --base /work/wt/base-x  # before/after, side by side

Builds the archive through the project's own schema (``Archive.open`` runs every migration, so
the FTS5 triggers fill the indexes as the text is inserted), with executemany in one
transaction: mixed Japanese and English articles, one in ten linking a PDF whose text holds a
unique word, one English article in four with an inflected or look-alike sentence.

Times each query as ``npi-crawler search`` runs it (in-process, limit 20, the total counted) and
as the Search page of ``npi-crawler serve`` answers it (Datasette's own in-process client, JSON):
p50 and p95 of the wall time and of the process's CPU time (steadier on a shared machine).

``--base DIR`` compares with another checkout (a worktree of the tag round3-base, with its own
.venv): each version builds the same corpus with its own code and schema, then the two are timed
in alternating rounds, in separate processes, and printed side by side with the ratio new / base.
``--long-query`` also times a 12 KB query (1,700 words) on 1,000 articles.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

QUERIES = [
    ("EN word", "semiconductors", {}),
    ("EN word in 47k articles", "policy", {}),
    ("EN stem (sanction)", "sanction", {}),
    ("EN two words", "artificial intelligence", {}),
    ("EN phrase + filters", '"supply chains" energy', {"langs": ["en"], "sections": ["policy"]}),
    ("EN 2 chars (G7)", "G7", {}),
    ("EN fragment (semicon)", "semicon", {}),
    ("JA 3 chars (半導体)", "半導体", {}),
    ("JA 6 chars + since", "経済安全保障", {"since": "2020"}),
    ("JA 2 chars (憲法)", "憲法", {}),
    ("JA 2 chars (財政)", "財政", {}),
    ("JA 2 chars (中国)", "中国", {}),
    ("JA 2 + 3 chars", "憲法 半導体", {}),
    ("JA in every title (研究会)", "研究会", {}),
    ("PDF-only term", "pdfonlyterm{last_pdf}", {}),
]
PAGE_QUERIES = ("半導体", "経済安全保障", "憲法", "財政", "中国", "憲法 半導体", "semiconductors", "policy")
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


def sentence(rng: random.Random, lang: str, words: tuple[tuple[str, ...], tuple[str, ...]]) -> str:
    ja, en = words
    if lang == "ja":
        a, b, c = rng.sample(ja, 3)
        return f"{a}をめぐる{b}と{c}の課題について検討した。"
    a, b, c = rng.sample(en, 3)
    return f"This paper examines {a}, {b} and {c}."


def corpus(n: int, seed: int = 1) -> tuple[list, list, list, list]:
    """The rows of ``n`` articles (the same for every version: a fixed random stream)."""
    from tests.site.model import EN_WORDS, JA_WORDS, SECTIONS

    rng, extra = random.Random(seed), random.Random(seed + 1)
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
        body = "\n\n".join(sentence(rng, lang, (JA_WORDS, EN_WORDS)) for _ in range(rng.randint(3, 8)))
        if lang == "en" and extra.random() < 0.25:
            body += "\n\n" + extra.choice(INFLECTED)
        articles.append((url, lang, title, f"{y}-{m:02d}-{d:02d}", body, "x", now, now, now, now))
        chosen = {rng.choice(SECTIONS), rng.choice(SECTIONS)} if rng.random() < 0.2 else {rng.choice(SECTIONS)}
        sections += [(url, s, now, now) for s in chosen]
        if i % 10 == 7:
            pdf = f"https://npi.or.jp/research/data/{i:040d}.pdf"
            pdfs.append((url, pdf, 0))
            texts.append((pdf, "ok", f"NPI report {i} on {rng.choice(EN_WORDS)} pdfonlyterm{i}", now, now))
    return articles, sections, pdfs, texts


def build(path: str, n: int) -> dict[str, Any]:
    """The archive at ``path`` with ``n`` articles, by this checkout's code; its build time."""
    from npi_crawler.archive import Archive

    articles, sections, pdfs, texts = corpus(n)
    archive = Archive.open(path)
    start, cpu = time.perf_counter(), time.process_time()
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
            "INSERT INTO pdf_texts (url, status, text, first_fetched, last_fetched) VALUES (?, ?, ?, ?, ?)", texts
        )
    archive.db.execute("ANALYZE")
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    archive.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    sizes = archive.index_sizes()
    archive.close()
    return {"seconds": seconds, "cpu": cpu, "bytes": Path(path).stat().st_size, "indexes": sizes}


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    k = (len(values) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def timed(fn: Any, runs: int) -> tuple[Any, list[float], list[float]]:
    """``fn``'s result (after a warm-up call) and ``runs`` wall and CPU times in ms."""
    result = fn()
    walls, cpus = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append((time.perf_counter() - t0) * 1000)
        cpus.append((time.process_time() - c0) * 1000)
    return result, walls, cpus


def time_queries(path: str, runs: int, articles: int) -> dict[str, Any]:
    """Every query through ``search`` and the Search page, by this checkout's code."""
    from npi_crawler.archive import Archive
    from npi_crawler.research.search import search

    out: dict[str, Any] = {}
    last_pdf = (articles - 8) // 10 * 10 + 7  # the newest article with a PDF
    archive = Archive.open(path, readonly=True)
    for label, text, filters in QUERIES:
        text = text.format(last_pdf=last_pdf)
        hits, walls, cpus = timed(lambda t=text, f=filters: search(archive, t, **f), runs)
        out[label] = {"hits": len(hits), "total": getattr(hits, "total", None), "wall": walls, "cpu": cpus}
    archive.close()
    out["page"] = time_page(path, runs)
    return out


def time_page(path: str, runs: int) -> dict[str, Any]:
    """The Search page (``/<db>/search.json?q=``) in Datasette's in-process client: the canned
    query before the plugin, the plugin after."""
    from datasette.app import Datasette

    from npi_crawler.research.datasette import metadata

    with_plugin = ROOT / "npi_crawler" / "research" / "datasette_plugin"
    if with_plugin.exists():
        from datasette.plugins import pm

        from npi_crawler.research import datasette_plugin

        if not pm.is_registered(datasette_plugin):
            pm.register(datasette_plugin, name="npi_crawler")
    ds = Datasette([path], metadata=metadata(path))
    name = Path(path).stem
    out = {}
    for q in PAGE_QUERIES:
        url = f"/{name}/search.json?_shape=array&q={q}"

        def get(url: str = url) -> Any:
            response = asyncio.run(ds.client.get(url))
            assert response.status_code == 200, response.text
            body = response.json()
            return body["hits"] if isinstance(body, dict) else body

        hits, walls, cpus = timed(get, runs)
        out[q] = {"hits": len(hits), "wall": walls, "cpu": cpus}
    return out


def long_query(path: str) -> dict[str, Any]:
    """A 12 KB query (1,700 words, the hostile probe's) and the longest one accepted (32 common
    words), on a small archive: seconds of CPU, or the one line that refuses it."""
    from npi_crawler.archive import Archive
    from npi_crawler.errors import NpiError
    from npi_crawler.research.search import search

    rng = random.Random(1)
    words = ["policy", "this", "paper", "examines", "energy", "security"]
    out = {}
    archive = Archive.open(path, readonly=True)
    for label, n in (("12 KB, 1,700 words", 1700), ("32 words", 32)):
        text = " ".join(rng.choice(words) for _ in range(n))
        c0 = time.process_time()
        try:
            result: Any = len(search(archive, text))
        except NpiError as exc:
            result = str(exc)
        out[label] = {"chars": len(text), "cpu_s": time.process_time() - c0, "result": result}
    archive.close()
    return out


# -- running two checkouts side by side --------------------------------------------------------------


def in_checkout(root: Path, *args: str) -> Any:
    """This script, run by ``root``'s own Python on ``root``'s code; its JSON answer."""
    python = root / ".venv" / "bin" / "python"
    cmd = [str(python), str(Path(__file__).resolve()), "--root", str(root), *args, "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=root)
    return json.loads(proc.stdout.splitlines()[-1])


def merge(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The timings of several rounds, one list per query."""
    merged: dict[str, Any] = json.loads(json.dumps(results[0]))
    for extra in results[1:]:
        for label, entry in extra.items():
            target = merged[label]
            for key in ("wall", "cpu"):
                if key in entry:
                    target[key] += entry[key]
            for q, page in entry.items() if label == "page" else ():
                target[q]["wall"] += page["wall"]
                target[q]["cpu"] += page["cpu"]
    return merged


def p(entry: dict[str, Any], key: str) -> str:
    return f"{percentile(entry[key], 0.5):.1f} / {percentile(entry[key], 0.95):.1f}"


def ratio(new: dict[str, Any], base: dict[str, Any], key: str) -> str:
    return f"{percentile(new[key], 0.95) / max(percentile(base[key], 0.95), 1e-6):.2f}"


def print_side_by_side(base: dict[str, Any], new: dict[str, Any]) -> None:
    print("\n`search` (limit 20), ms: wall p50 / p95 and CPU p50 / p95; ratio = new / base at p95 (CPU)")
    print("| query | hits base / new (total) | base wall | new wall | base CPU | new CPU | CPU ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for label, *_ in QUERIES:
        b, n = base[label], new[label]
        hits = f"{b['hits']} / {n['hits']} ({n['total']:,})" if n.get("total") is not None else f"{b['hits']} / {n['hits']}"
        print(f"| {label} | {hits} | {p(b, 'wall')} | {p(n, 'wall')} | {p(b, 'cpu')} | {p(n, 'cpu')} | {ratio(n, b, 'cpu')} |")
    print("\nSearch page (`serve`, /<db>/search.json?q=), ms, as above")
    print("| query | hits base / new | base wall | new wall | base CPU | new CPU | CPU ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for q in PAGE_QUERIES:
        b, n = base["page"][q], new["page"][q]
        print(f"| {q} | {b['hits']} / {n['hits']} | {p(b, 'wall')} | {p(n, 'wall')} | {p(b, 'cpu')} | {p(n, 'cpu')} | {ratio(n, b, 'cpu')} |")


def compare(args: argparse.Namespace, folder: Path) -> None:
    base_root = Path(args.base).resolve()
    paths = {"base": folder / "base" / "npi.db", "new": folder / "new" / "npi.db"}
    builds = {}
    for version, root in (("base", base_root), ("new", ROOT)):
        paths[version].parent.mkdir(parents=True, exist_ok=True)
        builds[version] = in_checkout(root, "--build", str(paths[version]), "--articles", str(args.articles))
        print(f"{version}: built {args.articles:,} articles in {builds[version]['seconds']:.1f} s "
              f"({builds[version]['cpu']:.1f} s CPU), {builds[version]['bytes'] / 1e6:.0f} MB", flush=True)  # fmt: skip
    rounds: dict[str, list] = {"base": [], "new": []}
    for n in range(args.rounds):  # alternating, so that both meet the same load
        for version, root in (("base", base_root), ("new", ROOT)) if n % 2 == 0 else (("new", ROOT), ("base", base_root)):
            rounds[version].append(in_checkout(root, "--time", str(paths[version]), "--runs", str(args.runs), "--articles", str(args.articles)))
            print(f"round {n + 1}: {version} timed", flush=True)
    print_side_by_side(merge(rounds["base"]), merge(rounds["new"]))
    print("\nindexes, MB: " + "; ".join(
        f"{v}: " + ", ".join(f"{k} {s / 1e6:.1f}" for k, s in builds[v]["indexes"].items()) + f" (file {builds[v]['bytes'] / 1e6:.0f})"
        for v in builds
    ))  # fmt: skip
    if args.long_query:
        small = {v: folder / v / "small.db" for v in paths}
        for version, root in (("base", base_root), ("new", ROOT)):
            in_checkout(root, "--build", str(small[version]), "--articles", "1000")
            print(f"\n{version}, 1,000 articles:", json.dumps(in_checkout(root, "--long", str(small[version])), ensure_ascii=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20, help="timed runs per query and round (after a warm-up)")
    parser.add_argument("--rounds", type=int, default=2, help="with --base: alternating rounds per version")
    parser.add_argument("--base", help="another checkout with its own .venv: before/after side by side")
    parser.add_argument("--long-query", action="store_true", help="also a 12 KB query on 1,000 articles")
    parser.add_argument("--dir", help="where to build the archives (default: a temporary folder)")
    # Used by --base: one step in one checkout, its answer as JSON.
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--build", help=argparse.SUPPRESS)
    parser.add_argument("--time", help=argparse.SUPPRESS)
    parser.add_argument("--long", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    global ROOT
    ROOT = Path(args.root).resolve() if args.root else ROOT
    sys.path.insert(0, str(ROOT))
    if args.build or args.time or args.long:
        step = build(args.build, args.articles) if args.build else (
            time_queries(args.time, args.runs, args.articles) if args.time else long_query(args.long)
        )  # fmt: skip
        print(json.dumps(step, ensure_ascii=False))
        return
    tmp = tempfile.TemporaryDirectory(dir=args.dir)
    folder = Path(tmp.name)
    if args.base:
        compare(args, folder)
        return
    path = str(folder / "npi.db")
    built = build(path, args.articles)
    print(f"built {args.articles:,} articles in {built['seconds']:.1f} s, {built['bytes'] / 1e6:.0f} MB")
    new = time_queries(path, args.runs, args.articles)
    for label, *_ in QUERIES:
        entry = new[label]
        print(f"  {label:28} {entry['hits']:>3} of {entry['total']:>6,}  wall {p(entry, 'wall')}  CPU {p(entry, 'cpu')} ms")
    for q, entry in new["page"].items():
        print(f"  page {q:23} {entry['hits']:>3}  wall {p(entry, 'wall')}  CPU {p(entry, 'cpu')} ms")
    print("indexes, MB: " + ", ".join(f"{k} {s / 1e6:.1f}" for k, s in built["indexes"].items()))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
