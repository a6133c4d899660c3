"""Cold start-up of the commands a researcher types most, beside sqlite-utils' own CLI.

``python -m benchmarks.startup [--runs 5]`` prints, for ``npi-crawler --help``, ``status``,
``search`` and ``export`` (on a small archive) and ``sqlite-utils --help`` in the same
virtualenv, the median wall time of RUNS fresh processes and the ratio to sqlite-utils. Each
process starts Python from nothing, as a user's shell does (bytecode already compiled).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from npi_crawler.archive import Archive
from npi_crawler.archive.records import ArticleRecord

BIN = Path(sys.executable).parent


def small_archive(path: str, n: int = 200) -> None:
    with Archive.open(path) as archive:
        run_id = archive.start_run(mode="incremental", base_url="https://npi.or.jp/", langs=["en"], sections=["policy"])
        for i in range(n):
            url = f"https://npi.or.jp/en/research/2025/06/{i:08d}.html"
            archive.store_article(
                ArticleRecord(
                    url=url,
                    lang="en",
                    title=f"Economic security note {i}",
                    published=f"2025-06-{1 + i % 28:02d}",
                    body="Semiconductor supply chains and economic security. " * 20,
                    pdfs=[],
                    authors=[],
                ),
                run_id=run_id,
            )
            archive.add_listing(url, "policy", run_id=run_id)
        archive.finish_run(run_id, status="ok", counts={"list_pages": 1}, stats={})


def median_seconds(argv: list[str], runs: int, pythonpath: str | None = None) -> float:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--before", metavar="DIR", help="also time the npi_crawler package found in DIR (e.g. an older checkout)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "npi.db")
        small_archive(db)
        npi = str(BIN / "npi-crawler")
        commands = {
            "sqlite-utils --help": [str(BIN / "sqlite-utils"), "--help"],
            "npi-crawler --help": [npi, "--help"],
            "npi-crawler status": [npi, "status", "--db", db],
            "npi-crawler search": [npi, "search", "semiconductor", "--db", db],
            "npi-crawler export": [npi, "export", "--db", db, "--lang", "en", "--since", "2025-06-20"],
        }
        for argv in commands.values():  # warm the OS cache and the bytecode once
            subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = median_seconds(commands["sqlite-utils --help"], args.runs)
        head = f"{'command':<24} {'median s':>9} {'ratio':>6}"
        print(head + (f" {'before s':>9} {'ratio':>6}" if args.before else "") + f"   ({args.runs} cold runs each)")
        for name, argv in commands.items():
            seconds = base if name.startswith("sqlite-utils") else median_seconds(argv, args.runs)
            line = f"{name:<24} {seconds:>9.3f} {seconds / base:>6.2f}"
            if args.before:
                old = base if name.startswith("sqlite-utils") else median_seconds(argv, args.runs, args.before)
                line += f" {old:>9.3f} {old / base:>6.2f}"
            print(line)


if __name__ == "__main__":
    main()
