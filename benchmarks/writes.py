"""What the crawl writes to disk against what it leaves there (issue 19).

For a first crawl of N articles (PDFs and WARC on, the replica on loopback) and for a ``watch``
that finds nothing new: the bytes the process wrote (``write_bytes`` of /proc/PID/io, read when it
has exited and before it is reaped), per archived article, and their ratio to what the archive,
its WAL and the WARC files grew by. ``write_bytes`` counts a page each time the process dirties it
(an fsync in between makes the next write count again), including pages of files deleted or
truncated before they reached the disk (SQLite's -shm and -wal at close); that part is shown as
``cancelled`` (the kernel's ``cancelled_write_bytes``), so written - cancelled is what reached the
disk.

python -m benchmarks.writes [--articles 300,1000,5000] [--before DIR]
    (also ``python -m benchmarks --only writes [--before DIR]``)

``--before DIR`` runs the same crawls with the checkout in DIR too (its own ``.venv``, e.g. a
worktree of the tag round3-base), in turn with this one over the same replica, so both columns
come from one run of the benchmark on the same machine at the same time.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import ROOT, machine, print_table, row
from tests.site import ReplicaServer, generate_site


@dataclass
class Written:
    written: int  # write_bytes of the process
    cancelled: int  # of which never reached the disk (files deleted or truncated first)
    grew: int  # what the archive + WAL + WARC files grew by
    articles: int  # articles archived
    cpu: float  # user + system seconds

    def ratio(self) -> float:
        return self.written / max(self.grew, 1)

    def text(self) -> str:
        per = f", {self.written / self.articles / 1024:.1f} KiB/article" if self.articles else ""
        ratio = f" = {self.ratio():.1f}x" if self.grew > 0 else ""
        return (
            f"{self.written / 1e6:.2f} MB (cancelled {self.cancelled / 1e6:.2f}){per}; "
            f"grew {self.grew / 1e6:.2f} MB{ratio}; CPU {self.cpu:.1f} s"
        )


def _on_disk(db: Path) -> int:
    """Bytes of the archive, its WAL and its WARC folder (npi.db -> npi-warc/)."""
    files = [db, Path(f"{db}-wal")] + sorted(db.with_name(db.stem + "-warc").glob("*"))
    return sum(f.stat().st_size for f in files if f.is_file())


def _articles(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT count(*) FROM articles").fetchone()[0]
    finally:
        conn.close()


def measure(tree: Path, command: str, db: Path, url: str) -> Written:
    """Run ``npi-crawler <command>`` of the checkout in ``tree`` and measure what it wrote."""
    before = _on_disk(db) if db.exists() else 0
    argv = [str(tree / ".venv" / "bin" / "python"), "-m", "npi_crawler", command, "--db", str(db), "--base-url", url]
    proc = subprocess.Popen(
        argv, cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "PYTHONWARNINGS": "ignore"}
    )
    assert proc.stderr is not None
    err = proc.stderr.read()
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped: /proc/PID/io is still there
    with open(f"/proc/{proc.pid}/io") as fh:
        io = {k: int(v) for k, v in (line.split(":") for line in fh)}
    _pid, status, usage = os.wait4(proc.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 3):  # watch exits 3 when something needs attention
        raise SystemExit(f"{' '.join(argv)} failed ({code}): {err.decode(errors='replace')[-2000:]}")
    return Written(
        io["write_bytes"],
        io["cancelled_write_bytes"],
        _on_disk(db) - before,
        _articles(db) if command == "crawl" else 0,
        usage.ru_utime + usage.ru_stime,
    )


def bench_writes(sizes: tuple[int, ...], workdir: Path, before: Path | None = None) -> None:
    trees = {"after": ROOT, **({"before": before} if before else {})}
    for n in sizes:
        site = generate_site(seed=5, n_articles=n, per_page=20)
        found: dict[str, dict[str, Written]] = {}
        with ReplicaServer(site, cache_pages=True) as replica:
            for i, (name, tree) in enumerate(sorted(trees.items(), reverse=n % 2 == 1)):
                db = workdir / f"{name}-{n}-{i}" / "npi.db"
                db.parent.mkdir()
                first = measure(tree, "crawl", db, replica.url)
                measure(tree, "watch", db, replica.url)  # the first watch: the differ's baseline
                found[name] = {"first": first, "nochange": measure(tree, "watch", db, replica.url)}
        for what, label in (("first", f"first crawl, {n} articles"), ("nochange", f"no-change watch, {n}")):
            for name in ("before", "after"):
                if name in found:
                    row("writes", f"{label}: {name}", found[name][what].text())
            if len(found) == 2:
                old, new = found["before"][what], found["after"][what]
                row("writes", f"{label}: written after / before", f"{new.written / max(old.written, 1):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description="disk writes of a first crawl and of a no-change watch")
    parser.add_argument("--articles", default="300,1000,5000", help="sizes, comma-separated")
    parser.add_argument("--before", metavar="DIR", type=Path, help="also measure the checkout in DIR (its .venv)")
    args = parser.parse_args()
    sizes = tuple(int(n) for n in args.articles.split(","))
    if args.before and not (args.before / ".venv" / "bin" / "python").exists():
        parser.error(f"{args.before} has no .venv: run 'make install' there first")
    print(machine(), flush=True)
    with tempfile.TemporaryDirectory(prefix="npi-bench-writes-") as tmp:
        bench_writes(sizes, Path(tmp), args.before.resolve() if args.before else None)
    print_table()


if __name__ == "__main__":
    main()
