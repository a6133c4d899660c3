"""Which last-resort body extractor to use when every body selector misses: a measurement.

``python -m benchmarks.body_extractors`` renders the replica's redesigned article pages (the
default profile's body selectors find nothing on them) and compares, with the model's body (the
oracle), what each candidate extracts:

  body_main    the parser's own fallback: the article container (here the whole page) as text
  trafilatura  trafilatura.extract(page) (precision-leaning, recall-leaning and default settings)
  readability  readability-lxml's Document(page).summary(), then the parser's block extraction

Figures per candidate: pages whose body equals the oracle's, character precision and recall
(difflib's matching blocks over the text: how much of what it kept is body, how much of the body it
kept), and milliseconds per page. A candidate that is not installed is reported as such.
"""

from __future__ import annotations

import argparse
import difflib
import statistics
import time
from collections.abc import Callable

import lxml.html

from npi_crawler.site.articles import extract_body, parse_article
from npi_crawler.site.text import normalize_space
from tests.site import generate_site
from tests.site.render import render


def _blocks_from_lines(text: str | None) -> str:
    lines = (normalize_space(line) for line in (text or "").splitlines())
    return "\n\n".join(line for line in lines if line)


def body_main(html: str, url: str) -> str:
    return parse_article(html, url).body


def trafilatura_extractor(**options: object) -> Callable[[str, str], str]:
    import trafilatura

    def extract(html: str, url: str) -> str:
        return _blocks_from_lines(trafilatura.extract(html, url=url, output_format="txt", **options))

    return extract


def readability_extractor() -> Callable[[str, str], str]:
    from readability import Document

    def extract(html: str, url: str) -> str:
        summary = Document(html).summary(html_partial=True)
        return extract_body(lxml.html.fromstring(summary)) if summary.strip() else ""

    return extract


def candidates() -> dict[str, Callable[[str, str], str] | str]:
    found: dict[str, Callable[[str, str], str] | str] = {"body_main": body_main}
    for name, make in (
        ("trafilatura", lambda: trafilatura_extractor()),
        ("trafilatura precision", lambda: trafilatura_extractor(favor_precision=True)),
        ("trafilatura recall", lambda: trafilatura_extractor(favor_recall=True)),
        ("readability", readability_extractor),
    ):
        try:
            found[name] = make()
        except ImportError as exc:
            found[name] = f"not installed ({exc.name})"
    return found


def score(got: str, want: str) -> tuple[float, float]:
    """Character precision and recall of ``got`` against ``want``."""
    matcher = difflib.SequenceMatcher(None, got, want, autojunk=False)
    matched = sum(block.size for block in matcher.get_matching_blocks())
    return (matched / len(got) if got else 0.0), (matched / len(want) if want else 1.0)


def pages(seeds: range, n_articles: int) -> list[tuple[str, str, str]]:
    """(url, redesigned page, oracle body) for every article of the generated sites."""
    out = []
    for seed in seeds:
        site = generate_site(seed=seed, n_articles=n_articles)
        site.layout = "redesign"
        for article in site.live():
            html = render(site, article.path).body.decode()
            out.append(("http://replica" + article.path, html, article.expected_body()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--articles", type=int, default=40)
    args = parser.parse_args()
    corpus = pages(range(1, args.seeds + 1), args.articles)
    print(f"{len(corpus)} redesigned article pages ({args.seeds} sites), both languages")
    print(f"{'candidate':<24} {'equal':>7} {'precision':>10} {'recall':>8} {'ms/page':>8}")
    for name, extract in candidates().items():
        if isinstance(extract, str):
            print(f"{name:<24} {extract}")
            continue
        equal, precisions, recalls = 0, [], []
        started = time.perf_counter()
        for url, html, want in corpus:
            got = extract(html, url)
            equal += got == want
            precision, recall = score(got, want)
            precisions.append(precision)
            recalls.append(recall)
        ms = (time.perf_counter() - started) * 1000 / len(corpus)
        print(
            f"{name:<24} {equal:>3}/{len(corpus):<3} {statistics.mean(precisions):>10.3f} "
            f"{statistics.mean(recalls):>8.3f} {ms:>8.1f}"
        )


if __name__ == "__main__":
    main()
