"""What an alert costs: its length, and the CPU time of the diff an edit alert shows. Prints
figures; not a test.

    .venv/bin/python benchmarks/alert_bench.py                      # this tree only
    .venv/bin/python benchmarks/alert_bench.py --before ../base     # and a tree to compare with

Each tree is measured in its own process (its own ``npi_crawler``), through the functions both
versions have: ``messages.format_article`` for a typical proposal's alert in Japanese and in
English (an issue 21 proposal: one or two authors, one or two PDFs, a body of several paragraphs),
fitted to Discord's limit; and ``research.history.diff`` (what ``history`` prints, and from this
change also what an edit alert shows) between two versions of a long article (400 paragraphs of
three sentences; the edit changes a word in five sentences, removes two and appends a paragraph),
CPU time per call (``time.process_time``, the best of 5 runs of 20 calls).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

JA_PARAGRAPHS = [
    "中曽根平和研究所は、重要鉱物のサプライチェーン強靭化に向けた政策提言を公表した。本提言は、経済安全保障の観点から、"
    "日本が取るべき施策を五つの柱に整理したものである。第一に、供給源の多角化を進めるべきである。",
    "第二に、備蓄制度を拡充し、価格高騰時の放出基準を明確にすべきである。第三に、同志国との共同調達と共同投資の枠組みを"
    "整えるべきである。第四に、精錬・加工の国内拠点を維持するため、長期の引取契約を政府が後押しすべきである。",
    "第五に、リサイクル技術への研究開発投資を拡大すべきである。提言の全文は下記のPDFを参照されたい。",
    "本提言は、当研究所の経済安全保障研究会における二年間の議論をもとに、伊藤誠主任研究員がとりまとめたものである。",
]
EN_PARAGRAPHS = [
    "NPI published policy recommendations on economic security, drafted by its study group over two years. They argue "
    "that Japan must secure critical minerals, semiconductors and energy for the coming decade, and that it cannot do "
    "so alone. The first recommendation is a standing council of ministers.",
    "The second is a fund for stockpiles of rare earths, released by rules set in advance rather than case by case. "
    "The third is joint procurement with like-minded countries, starting with Australia and the United States.",
    "The fourth asks the government to back long-term offtake contracts, so that refining capacity stays in Japan. "
    "The fifth is research funding for recycling. The full text is in the PDF below.",
    "The recommendations draw on two years of the Economic Security Study Group's meetings and were compiled by "
    "Senior Research Fellow Taro Nakasone and Research Fellow Hanako Yamada.",
]


def typical(lang: str) -> dict:
    ja = lang == "ja"
    prefix = "" if ja else "/en"
    return {
        "url": f"https://npi.or.jp{prefix}/research/2025/06/30150000.html",
        "lang": lang,
        "title": "「重要鉱物」に関する政策提言" if ja else "Japan's Economic Security in the New Era",
        "published": "2025-06-30",
        "body": "\n\n".join(JA_PARAGRAPHS if ja else EN_PARAGRAPHS),
        "sections": ["industry", "policy"],
        "authors": ["伊藤 誠"] if ja else ["Taro Nakasone", "Hanako Yamada"],
        "pdfs": [f"https://npi.or.jp{prefix}/research/data/{c * 40}.pdf" for c in ("a", "b")[: 2 if ja else 1]],
    }


def long_versions(lang: str) -> tuple[str, str]:
    """The body of a long article (400 paragraphs of 3 sentences) and of its edit."""
    ja = lang == "ja"

    def sentence(i: int) -> str:
        if ja:
            return f"第{i}の論点として、経済安全保障をめぐる半導体と重要鉱物の課題を検討した。"
        return f"Point {i} examines economic security, semiconductors and critical minerals in detail."

    paragraphs = [[sentence(3 * p + k) for k in range(3)] for p in range(400)]
    old = "\n\n".join(("" if ja else " ").join(p) for p in paragraphs)
    for p in (40, 120, 200, 280, 360):
        paragraphs[p][1] = paragraphs[p][1].replace("半導体" if ja else "semiconductors", "量子技術" if ja else "quantum")
    del paragraphs[300][2], paragraphs[301][0]
    paragraphs.append(["追記：本稿は改訂された。" if ja else "Note: this paper was revised."])
    return old, "\n\n".join(("" if ja else " ").join(p) for p in paragraphs)


def measure() -> dict:
    """The figures of the tree whose ``npi_crawler`` this process imports."""
    from npi_crawler.monitor.messages import format_article
    from npi_crawler.monitor.messages_fit import Limits, fit, measure
    from npi_crawler.research.history import Version, diff

    out: dict = {}
    for lang in ("ja", "en"):
        article = typical(lang)
        message = format_article(article, "new", ["policy"])
        title, body = fit(message["title"], message["body"], Limits(2000, 250, True))
        lines = message["body"].split("\n")
        out[f"{lang} alert: characters (title + body)"] = measure(message["title"]) + measure(message["body"])
        out[f"{lang} alert: excerpt characters"] = max(len(line) for line in lines if "://" not in line)
        out[f"{lang} alert: authors named, PDFs linked"] = (
            f"{sum(a in message['body'] for a in article['authors'])}/{len(article['authors'])}, "
            f"{sum(p in message['body'] for p in article['pdfs'])}/{len(article['pdfs'])}"
        )
        out[f"{lang} alert fitted to Discord (2000)"] = measure(title) + measure(body)
        old_body, new_body = long_versions(lang)
        versions = (
            Version(1, "a", "b", 1, "t", "2025-06-30", old_body, [], []),
            Version(2, "b", None, None, "t", "2025-06-30", new_body, [], []),
        )
        best = min(_cpu(diff, versions) for _ in range(5))
        out[f"{lang} diff of a long article ({len(new_body)} chars): ms CPU"] = round(best * 1000, 2)
        out[f"{lang} diff of a long article: lines shown"] = len(diff(*versions))
    return out


def _cpu(call: Callable[..., object], args: tuple, n: int = 20) -> float:
    """CPU seconds of one ``call(*args)``, the mean of ``n``."""
    started = time.process_time()
    for _ in range(n):
        call(*args)
    return (time.process_time() - started) / n


def run_in(tree: Path) -> dict:
    """``measure()`` in a process that imports ``npi_crawler`` from ``tree``."""
    argv = [sys.executable, __file__, "--measure", str(tree)]
    return json.loads(subprocess.run(argv, capture_output=True, text=True, check=True, cwd=tree).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", type=Path, help="another checkout to compare with (e.g. the tag round3-base)")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # the child process of run_in
    args = parser.parse_args()
    if args.measure:
        sys.path.insert(0, str(args.measure))
        print(json.dumps({"tree": __import__("npi_crawler").__file__, **measure()}))
        return
    after = run_in(ROOT)
    before = run_in(args.before.resolve()) if args.before else {}
    print(f"before: {before.pop('tree', '-')}\nafter:  {after.pop('tree')}")
    print(f"{'figure':<58} {'before':>12} {'after':>12} {'ratio':>7}")
    for key, value in after.items():
        old = before.get(key, "")
        ratio = f"{value / old:.2f}" if isinstance(value, (int, float)) and isinstance(old, (int, float)) and old else ""
        print(f"{key:<58} {old!s:>12} {value!s:>12} {ratio:>7}")


if __name__ == "__main__":
    main()
