"""Rule matching speed: 20 rules over a batch of synthetic articles. Prints figures; not a test.

    .venv/bin/python benchmarks/rules_bench.py                  # 5,000 articles, 20 rules
    .venv/bin/python benchmarks/rules_bench.py --articles 500 --runs 5

Articles are mixed Japanese and English, sized like the site's: bodies of 20 sentences of about 15
words, one article in three linking a PDF of 200 sentences (a report). Sentences are made-up
words; one in 20 (``--topical``) also names one of the replica's topics (tests/site/model.py), so
a rule matches a few percent of the bodies and more of the PDFs, as real topics do. The 20 rules mix every kind of term the engine has: English words and
phrases, Japanese terms of 3+ characters (trigram) and of 2 (LIKE), all/none/sections/langs.
The figure is the whole of ``match_rules``: folding the text, building the in-memory FTS5 indexes,
running every term, combining them per rule and writing a snippet for every match.

Then the same articles in a real archive file (their PDF texts in ``pdf_texts``): ``rules check``
as the command runs it (reading every live article and its PDFs from SQLite, counts and the 3
newest matches per rule), and the differ of a ``watch`` run that finds 10 new articles, with the 20
rules known (reading the new articles and their PDFs, matching, queuing one alert per article).
Run it alone: the figures are wall-clock times.
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from npi_crawler.archive import Archive  # noqa: E402
from npi_crawler.archive.records import ArticleRecord  # noqa: E402
from npi_crawler.monitor.differ import DiffOptions, diff  # noqa: E402
from npi_crawler.rules.check import check_rules  # noqa: E402
from npi_crawler.rules.matching import Document, MatchIndex, match_rules  # noqa: E402
from npi_crawler.rules.model import rules_from_table  # noqa: E402
from tests.site.model import EN_WORDS, JA_WORDS, SECTIONS  # noqa: E402
from tests.site.model import _title as replica_title  # noqa: E402

RULES = {
    "rule": [
        {"name": "chips", "any": ["semiconductor", "半導体"]},
        {"name": "chips-en", "any": ["semiconductor"], "langs": ["en"], "sections": ["industry", "policy"]},
        {"name": "econsec", "any": ["economic security", "経済安全保障"]},
        {"name": "supply", "any": ["supply chain", "サプライチェーン"], "none": ["energy"]},
        {"name": "alliance", "any": ["Japan-US alliance", "日米同盟"]},
        {"name": "indopac", "any": ["Indo-Pacific", "インド太平洋"], "sections": ["diplomacy"]},
        {"name": "constitution", "any": ["constitutional reform", "憲法改正"]},
        {"name": "ai", "any": ["artificial intelligence", "人工知能", "AI"]},
        {"name": "quantum", "any": ["quantum technology", "量子技術"]},
        {"name": "energy-climate", "all": ["energy", "climate change"]},
        {"name": "china", "any": ["China", "中国"], "none": ["Taiwan Strait", "台湾海峡"]},
        {"name": "taiwan", "any": ["Taiwan", "台湾海峡"]},
        {"name": "korea", "any": ["Korean Peninsula", "朝鮮半島"]},
        {"name": "space", "any": ["space", "宇宙"], "langs": ["ja"]},
        {"name": "fiscal", "any": ["fiscal policy", "財政"]},
        {"name": "defence", "any": ["defence capability", "防衛力"], "sections": ["diplomacy", "policy"]},
        {"name": "trade", "any": ["trade policy", "通商政策"]},
        {"name": "digital", "any": ["digital", "デジタル"]},
        {"name": "ageing", "any": ["ageing society", "少子高齢化", "人口減少"]},
        {"name": "geo", "all": ["地政学", "国際秩序"]},
    ]
}


def filler(rng: random.Random) -> tuple[list[str], list[str]]:
    """Made-up words for the text around the topics: English-like and Japanese-like."""
    syllables = ["ka", "to", "ren", "mi", "sol", "ver", "ta", "lin", "po", "dex", "an", "or", "ies", "ment"]
    en = ["".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))) for _ in range(3000)]
    kana = "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをん"
    kanji = "政策制度社会国家地域関係議論分析課題状況影響強化推進構造変化展望戦略協力市場"
    ja = ["".join(rng.choice(kanji) for _ in range(2)) + rng.choice(kana) for _ in range(3000)]
    return en, ja


def sentence(rng: random.Random, lang: str, words: tuple[list[str], list[str]], topical: float) -> str:
    """About 15 words; with probability ``topical`` one of the replica's topics among them."""
    en, ja = words
    pick = rng.sample(en if lang == "en" else ja, 14)
    if rng.random() < topical:
        pick.insert(rng.randrange(len(pick)), rng.choice(EN_WORDS if lang == "en" else JA_WORDS))
    if lang == "ja":
        return "".join(pick) + "。"
    return " ".join(pick).capitalize() + "."


def documents(n: int, topical: float, seed: int = 1) -> list[Document]:
    rng = random.Random(seed)
    words = filler(rng)
    docs = []
    for i in range(n):
        lang = "ja" if i % 2 else "en"
        url = f"https://npi.or.jp/{'en/' if lang == 'en' else ''}research/2025/01/{i:08d}.html"
        title = " ".join(replica_title(rng, lang, i).split())  # the replica's titles
        body = "\n\n".join(sentence(rng, lang, words, topical) for _ in range(20))
        pdfs: tuple[tuple[str, str], ...] = ()
        if i % 3 == 0:
            text = " ".join(sentence(rng, rng.choice(("ja", "en")), words, topical) for _ in range(200))
            pdfs = ((f"https://npi.or.jp/research/data/{i:040d}.pdf", text),)
        sections = tuple({rng.choice(SECTIONS) for _ in range(rng.choice((1, 1, 1, 2)))})
        published = f"{2016 + i % 10}-{1 + i % 12:02d}-{1 + i % 28:02d}"
        docs.append(Document(url, lang, sections, title, body, pdfs, published))
    return docs


def store(archive: Archive, docs: list[Document]) -> None:
    """One crawl run that archived ``docs`` with their sections and PDF texts."""
    run_id = archive.start_run(mode="incremental", base_url="https://npi.or.jp/", langs=["ja", "en"], sections=[])
    for doc in docs:
        item = {
            "url": doc.url,
            "lang": doc.lang,
            "title": doc.title,
            "published": doc.published,
            "body": doc.body,
            "authors": [],
            "pdfs": [url for url, _text in doc.pdfs],
        }
        archive.store_article(ArticleRecord(**item), run_id=run_id)
        for section in doc.sections:
            archive.add_listing(doc.url, section, run_id=run_id)
        for url, text in doc.pdfs:
            archive.store_pdf(url, status="ok", run_id=run_id, text=text, size=len(text))
    archive.finish_run(run_id, status="ok", counts={}, stats={"npi/list/pages": 12, "npi/article/pages": len(docs)})


def archive_figures(docs: list[Document], rules: tuple, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "npi.db")
        started = time.perf_counter()
        with Archive.open(path) as archive:
            store(archive, docs[10:])
            diff(archive, DiffOptions(rules=rules))  # the baseline: every scope and rule known
        size = Path(path).stat().st_size / 1e6
        print(f"archive of {len(docs) - 10} articles written in {time.perf_counter() - started:.1f} s ({size:.0f} MB)")
        timings = []
        for _ in range(runs):
            started = time.perf_counter()
            with Archive.open(path, readonly=True) as archive:
                reports = check_rules(archive, rules, latest=3)
            timings.append(time.perf_counter() - started)
        print(
            f"rules check on that archive (read every article and PDF from SQLite, count, 3 newest per rule): "
            f"median {statistics.median(timings):.2f} s of {runs}; {sum(r.count for r in reports)} matches"
        )
        with Archive.open(path) as archive:
            store(archive, docs[:10])
            started = time.perf_counter()
            result = diff(archive, DiffOptions(rules=rules, flood_limit=0))
            took = time.perf_counter() - started
        print(
            f"the differ of a watch run with 10 new articles and the 20 rules: {took * 1000:.0f} ms "
            f"({len(result.alerts)} alerts queued, one per article)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--topical",
        type=float,
        default=0.05,
        help="share of sentences that name a topic (default 0.05; 1.0: nearly every rule matches "
        "nearly every article, a stress figure)",
    )
    parser.add_argument("--no-archive", action="store_true", help="skip the figures over a real archive file")
    args = parser.parse_args()
    rules = rules_from_table(RULES, "benchmark")
    docs = documents(args.articles, args.topical)
    chars = sum(len(d.title) + len(d.body) + sum(len(t) for _u, t in d.pdfs) for d in docs)
    print(
        f"{len(docs)} articles ({sum(1 for d in docs if d.pdfs)} with a PDF), "
        f"{chars / 1e6:.1f} M characters of text; {len(rules)} rules, "
        f"{len({t for r in rules for t in r.any + r.all + r.none})} distinct terms"
    )
    timings = []
    for _ in range(args.runs):
        started = time.perf_counter()
        result = match_rules(docs, rules)
        timings.append(time.perf_counter() - started)
    matches = sum(len(m) for m in result.values())
    print(
        f"match_rules, whole batch: median {statistics.median(timings):.2f} s of {args.runs} runs "
        f"(min {min(timings):.2f}); {len(result)} articles matched, {matches} (article, rule) matches"
    )
    started = time.perf_counter()
    index = MatchIndex(docs)
    loaded = time.perf_counter()
    index.hits("semiconductor")
    first = time.perf_counter()
    index.match(rules)
    done = time.perf_counter()
    index.close()
    print(
        f"  of which: folding the text {loaded - started:.2f} s; the first English term (builds the "
        f"word index) {first - loaded:.2f} s; every other term, the rules and the snippets "
        f"{done - first:.2f} s"
    )
    started = time.perf_counter()
    with MatchIndex(docs) as index:
        counts = [index.matching_docs(rule) for rule in rules]
        for rule, found in zip(rules, counts, strict=True):
            for n in found[-5:]:
                index.first_match(rule, n)
    print(
        f"rules check (counts, and a snippet for 5 matches per rule): {time.perf_counter() - started:.2f} s; "
        f"matches per rule {min(map(len, counts))} to {max(map(len, counts))}"
    )
    small = []
    for k in range(20):
        batch = docs[k * 10 : k * 10 + 10]
        started = time.perf_counter()
        match_rules(batch, rules)
        small.append((time.perf_counter() - started) * 1000)
    print(f"a watch run's batch of 10 new articles: median {statistics.median(small):.1f} ms of 20")
    if not args.no_archive:
        archive_figures(docs, rules, args.runs)
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MiB")


if __name__ == "__main__":
    main()
