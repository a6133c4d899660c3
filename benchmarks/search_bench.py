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
from urllib.parse import urlencode

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
    ("JA 2 chars + until (財政)", "財政", {"until": "2015-06"}),
    ("JA + author (半導体)", "半導体", {"author": "中曽根"}),
    ("EN + author + since", "security", {"author": "Nakasone", "since": "2020"}),
    ("EN + lang + section", "energy", {"langs": ["en"], "sections": ["diplomacy"]}),
    ("PDF-only term", "pdfonlyterm{last_pdf}", {}),
]
# Authors: one or two an article, from experts with a Japanese and an English page (surname, given).
EXPERTS = [
    (ja, en, given_ja, given_en)
    for ja, en in (("山田", "Yamada"), ("佐藤", "Sato"), ("鈴木", "Suzuki"), ("高橋", "Takahashi"), ("田中", "Tanaka"),
                   ("伊藤", "Ito"), ("渡辺", "Watanabe"), ("中村", "Nakamura"), ("小林", "Kobayashi"), ("加藤", "Kato"),
                   ("吉田", "Yoshida"), ("中曽根", "Nakasone"))
    for given_ja, given_en in (("太郎", "Taro"), ("花子", "Hanako"), ("一郎", "Ichiro"), ("康弘", "Yasuhiro"), ("美咲", "Misaki"))
]  # fmt: skip
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


def corpus(n: int, seed: int = 1) -> dict[str, list]:
    """The rows of ``n`` articles (the same for every version: fixed random streams; the authors
    from a stream of their own, so that the texts are those of the earlier runs)."""
    from tests.site.model import EN_WORDS, JA_WORDS, SECTIONS

    rng, extra, people = random.Random(seed), random.Random(seed + 1), random.Random(seed + 2)
    articles, sections, pdfs, texts, authors = [], [], [], [], []
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
        for position, expert in enumerate(people.sample(range(len(EXPERTS)), people.choice((1, 1, 2)))):
            authors.append((url, position, expert_name(expert, lang), expert_url(expert, lang)))
        if i % 10 == 7:
            pdf = f"https://npi.or.jp/research/data/{i:040d}.pdf"
            pdfs.append((url, pdf, 0))
            texts.append((pdf, "ok", f"NPI report {i} on {rng.choice(EN_WORDS)} pdfonlyterm{i}", now, now))
    experts = [(expert_url(i, lang), lang, expert_name(i, lang), "ok", now, now)
               for i in range(len(EXPERTS)) for lang in ("ja", "en")]  # fmt: skip
    return {"articles": articles, "sections": sections, "pdfs": pdfs, "texts": texts, "authors": authors, "experts": experts}


def expert_name(i: int, lang: str) -> str:
    ja, en, given_ja, given_en = EXPERTS[i]
    return f"{ja} {given_ja}" if lang == "ja" else f"{given_en} {en.upper()}"


def expert_url(i: int, lang: str) -> str:
    return f"https://npi.or.jp/{'en/' if lang == 'en' else ''}experts/{i:03d}.html"


def build(path: str, n: int) -> dict[str, Any]:
    """The archive at ``path`` with ``n`` articles, by this checkout's code; its build time."""
    from npi_crawler.archive import Archive

    rows = corpus(n)
    archive = Archive.open(path)
    start, cpu = time.perf_counter(), time.process_time()
    with archive.atomic() as conn:
        conn.executemany(
            "INSERT INTO articles (url, lang, title, published, body, content_hash, first_seen, last_seen, "
            "last_fetched, last_changed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows["articles"],
        )
        conn.executemany(
            "INSERT INTO article_sections (article_url, section, first_seen, last_seen) VALUES (?, ?, ?, ?)",
            rows["sections"],
        )
        conn.executemany("INSERT INTO pdfs (article_url, url, position) VALUES (?, ?, ?)", rows["pdfs"])
        conn.executemany(
            "INSERT INTO pdf_texts (url, status, text, first_fetched, last_fetched) VALUES (?, ?, ?, ?, ?)",
            rows["texts"],
        )
        conn.executemany(
            "INSERT INTO authors (article_url, position, name, profile_url) VALUES (?, ?, ?, ?)", rows["authors"]
        )
        conn.executemany(
            "INSERT INTO experts (url, lang, name, status, first_fetched, last_fetched) VALUES (?, ?, ?, ?, ?, ?)",
            rows["experts"],
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
    archive = Archive.open(path, readonly=True)
    for label, text, filters in QUERIES:
        text = text.format(last_pdf=last_pdf(articles))
        hits, walls, cpus = timed(lambda t=text, f=filters: search(archive, t, **f), runs)
        found = [(h.url, round(h.score, 6), h.published) for h in hits]
        total = getattr(hits, "total", None)
        out[label] = {"hits": len(hits), "total": total, "exact": getattr(hits, "exact", True), "found": found}
        out[label] |= {"wall": walls, "cpu": cpus}
    archive.close()
    out["page"] = time_page(path, runs, articles)
    return out


def last_pdf(articles: int) -> int:
    return (articles - 8) // 10 * 10 + 7  # the newest article with a PDF


def page_url(database: str, text: str, filters: dict[str, Any]) -> str:
    """The Search page's JSON for a query and its filters, as its form sends them."""
    args = [("_shape", "array"), ("q", text)]
    args += [("lang", v) for v in filters.get("langs", ())]
    args += [("section", v) for v in filters.get("sections", ())]
    args += [(k, filters[k]) for k in ("since", "until", "author") if filters.get(k)]
    return f"/{database}/search.json?" + urlencode(args)


def time_page(path: str, runs: int, articles: int) -> dict[str, Any]:
    """The Search page (``/<db>/search.json?q=``) in Datasette's in-process client, every query
    with its filters: the canned query before the plugin (which took ``q`` alone), the plugin
    after."""
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
    for label, text, filters in QUERIES:
        url = page_url(name, text.format(last_pdf=last_pdf(articles)), filters)

        def get(url: str = url) -> Any:
            response = asyncio.run(ds.client.get(url))
            assert response.status_code == 200, response.text
            body = response.json()
            return body["hits"] if isinstance(body, dict) else body

        hits, walls, cpus = timed(get, runs)
        out[label] = {"hits": len(hits), "wall": walls, "cpu": cpus}
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


def agreement(base: list[list], new: list[list]) -> str:
    """Whether two versions found the same hits in the same order (url, score, date each):
    "same"; "ties" when only articles of equal score are ordered differently (newest first now)
    or, at the last score shown, others of that score are shown; else "DIFFERENT"."""
    if base == new:
        return "same"
    if [h[1] for h in base] != [h[1] for h in new]:
        return "DIFFERENT"
    last = base[-1][1] if base else None
    for score in {h[1] for h in base} - {last}:
        if {h[0] for h in base if h[1] == score} != {h[0] for h in new if h[1] == score}:
            return "DIFFERENT"
    return "ties"


def total_text(entry: dict[str, Any]) -> str:
    return f"{entry['total']:,}" + ("" if entry.get("exact", True) else "+")


def print_side_by_side(base: dict[str, Any], new: dict[str, Any]) -> None:
    print("\n`search` (limit 20), ms: wall p50 / p95 and CPU p50 / p95; ratio = new / base at p95 (CPU)")
    print("| query | hits base / new | total base / new | same hits | base wall | new wall | base CPU | new CPU | CPU ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, *_ in QUERIES:
        b, n = base[label], new[label]
        hits = f"{b['hits']} / {n['hits']} | {total_text(b)} / {total_text(n)} | {agreement(b['found'], n['found'])}"
        print(f"| {label} | {hits} | {p(b, 'wall')} | {p(n, 'wall')} | {p(b, 'cpu')} | {p(n, 'cpu')} | {ratio(n, b, 'cpu')} |")
    print("\nSearch page (`serve`, /<db>/search.json?q=, the filters as its form sends them), ms, as above")
    print("| query | hits base / new | base wall | new wall | base CPU | new CPU | CPU ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for label, *_ in QUERIES:
        b, n = base["page"][label], new["page"][label]
        print(f"| {label} | {b['hits']} / {n['hits']} | {p(b, 'wall')} | {p(n, 'wall')} | {p(b, 'cpu')} | {p(n, 'cpu')} | {ratio(n, b, 'cpu')} |")


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
    for label, entry in new["page"].items():
        print(f"  page {label:23} {entry['hits']:>3}  wall {p(entry, 'wall')}  CPU {p(entry, 'cpu')} ms")
    print("indexes, MB: " + ", ".join(f"{k} {s / 1e6:.1f}" for k, s in built["indexes"].items()))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
