"""Issue 20's benchmarks: what a no-change `watch` costs, and how soon a change is found.

``nochange``: a no-change ``watch`` on a 300-article replica (a channel configured, as on a real
schedule), its CPU (user + system of the process, from wait4) against ``sqlite-utils --help`` in the
same venv, and the bytes it wrote (/proc/PID/io ``write_bytes``); this checkout with the shipped
sweep and with ``--sweep-lists 0 --sweep-articles 0``, and with ``--before DIR`` the checkout in DIR
(e.g. a worktree of the tag round3-base with its own .venv), side by side in one run, each run
several times (the median is shown).

``day``: a simulated day of the replica. Each ``watch`` is a real process; the clock is the run's
index x 5 minutes. Events at random times: new articles published, two back-dated articles (filed on
page 2 of their lists), one edit of a known article. This checkout runs every 5 minutes (the shipped
schedule, ``--changes``); with ``--before DIR`` that checkout runs its schedule, hourly, beside it
(its weekly ``--full`` is outside a simulated day: what only it finds is reported as not found).
Detection latency = the time of the first run after which the archive has the article (new,
back-dated) or a revision of it (edit), minus the event's time; requests an hour from the replica's
log.

    python -m benchmarks.latency [--before DIR] [--articles 300] [--hours 24] [--repeat 5]
    (also ``python -m benchmarks --only latency [--before DIR]``)
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sqlite3
import statistics
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.common import ROOT, machine, print_table, row
from tests.site import ReplicaServer, Site, control, generate_site

CHANNEL = "json://127.0.0.1:9/unused"  # configured, never sent to: nothing new in a no-change run
NO_SWEEP = ("--sweep-lists", "0", "--sweep-articles", "0")
SLOT_MINUTES = 5


@dataclass
class Cost:
    code: int
    cpu: float  # user + system seconds
    written: int  # /proc/PID/io write_bytes


def run_tree(tree: Path, *args: str) -> Cost:
    """``npi-crawler ARGS`` of the checkout in ``tree`` (its .venv), measured."""
    argv = [str(tree / ".venv" / "bin" / "python"), "-m", "npi_crawler", *args]
    return run_cost(argv, tree)


def run_cost(argv: list[str], cwd: Path) -> Cost:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped: /proc/PID/io is still there
    with open(f"/proc/{proc.pid}/io") as fh:
        io = {k: int(v) for k, v in (line.split(":") for line in fh)}
    _pid, status, usage = os.wait4(proc.pid, 0)
    return Cost(os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime, io["write_bytes"])


def watch(tree: Path, db: Path, url: str, *extra: str) -> Cost:
    cost = run_tree(tree, "watch", "--db", str(db), "--base-url", url, "--notify", CHANNEL, *extra)
    if cost.code not in (0, 3):  # 3: needs attention (a PDF it cannot read...), still a run
        raise SystemExit(f"watch in {tree} exited {cost.code}")
    return cost


# -- a no-change watch ------------------------------------------------------------------------------


def bench_nochange(workdir: Path, n: int, repeat: int, before: Path | None) -> None:
    trees = {"after": ROOT, **({"before": before} if before else {})}
    variants = [("after", ()), ("after, no sweep", NO_SWEEP)] + ([("before", ())] if before else [])
    site = generate_site(seed=5, n_articles=n, per_page=20)
    costs: dict[str, list[Cost]] = {name: [] for name, _ in variants}
    helps: dict[str, list[float]] = {name: [] for name in trees}
    with ReplicaServer(site) as replica:
        dbs = {}
        for name, tree in trees.items():
            dbs[name] = workdir / f"nochange-{name}" / "npi.db"
            dbs[name].parent.mkdir()
            run_tree(tree, "crawl", "--db", str(dbs[name]), "--base-url", replica.url)
            watch(tree, dbs[name], replica.url)  # the differ's baseline
            watch(tree, dbs[name], replica.url)  # robots.txt and every list page's validators kept
        for _ in range(repeat):  # interleaved: the machine's load falls on every variant alike
            for name, extra in variants:
                tree_name = name.split(",")[0]
                costs[name].append(watch(trees[tree_name], dbs[tree_name], replica.url, *extra))
            for name, tree in trees.items():
                helps[name].append(run_cost([str(tree / ".venv" / "bin" / "sqlite-utils"), "--help"], tree).cpu)
    for name, _extra in variants:
        cpu = statistics.median(c.cpu for c in costs[name])
        written = statistics.median(c.written for c in costs[name])
        base = statistics.median(helps[name.split(",")[0]])
        row("nochange", f"{name}: CPU s (x sqlite-utils --help)", f"{cpu:.2f} ({cpu / base:.1f}x of {base:.2f})")
        row("nochange", f"{name}: written KiB", f"{written / 1024:.0f}")
    if before:
        old, new = (statistics.median(c.cpu for c in costs[k]) for k in ("before", "after"))
        row("nochange", "CPU after / before", f"{new / old:.2f}")


# -- a simulated day ----------------------------------------------------------------------------------


@dataclass
class Event:
    minute: int
    kind: str  # new, back-dated, edited
    lang: str
    path: str = ""
    found: dict[str, int] = field(default_factory=dict)  # tree -> minute found


def plan_events(hours: int, rng: random.Random) -> list[Event]:
    day = hours * 60
    events = [Event(rng.randrange(day - 60), "new", rng.choice(("ja", "en"))) for _ in range(max(2, hours // 3))]
    events += [Event(rng.randrange(day // 2), "back-dated", lang) for lang in ("ja", "en")]
    events.append(Event(rng.randrange(day // 4), "edited", "en"))
    return sorted(events, key=lambda e: e.minute)


def apply(event: Event, sites: dict[str, Site], replicas: dict[str, ReplicaServer], n: int) -> None:
    """The same change on every tree's replica (the same seed: the same article path)."""
    for name, site in sites.items():
        with replicas[name].lock:
            if event.kind == "new":
                path = control.publish(site, lang=event.lang, sections=["policy"], seed=n).path
            elif event.kind == "back-dated":
                entries = site.list_entries(event.lang, "policy")
                path = control.publish(site, lang=event.lang, sections=["policy"], date=entries[min(25, len(entries) - 1)].published, seed=n).path
            else:
                entries = site.list_entries(event.lang, "policy")
                path = entries[min(30, len(entries) - 1)].path  # deep in its list: no list page shows the edit
                control.edit(site, path, append="A paragraph added later.")
        event.path = path


def detected(db: Path, event: Event, base_url: str) -> bool:
    url = base_url.rstrip("/") + event.path
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        table, column = ("revisions", "article_url") if event.kind == "edited" else ("articles", "url")
        return conn.execute(f"SELECT 1 FROM {table} WHERE {column} = ? LIMIT 1", (url,)).fetchone() is not None
    finally:
        conn.close()


def bench_day(workdir: Path, n: int, hours: int, before: Path | None) -> None:
    trees = {"after": (ROOT, 1, ("--changes",)), **({"before": (before, 12, ("--changes",))} if before else {})}
    sites = {name: generate_site(seed=9, n_articles=n, per_page=20) for name in trees}
    events = plan_events(hours, random.Random(20))
    replicas = {name: ReplicaServer(site) for name, site in sites.items()}
    dbs = {name: workdir / f"day-{name}" / "npi.db" for name in trees}
    cpu = dict.fromkeys(trees, 0.0)
    try:
        for name, (tree, _every, extra) in trees.items():
            replicas[name].__enter__()
            dbs[name].parent.mkdir()
            run_tree(tree, "crawl", "--db", str(dbs[name]), "--base-url", replicas[name].url)
            watch(tree, dbs[name], replicas[name].url, *extra)  # the differ's baseline
        marks = {name: len(replicas[name].log) for name in trees}
        for slot in range(hours * 60 // SLOT_MINUTES):
            minute = slot * SLOT_MINUTES
            for k, event in enumerate(events):
                if not event.path and event.minute <= minute:
                    apply(event, sites, replicas, 1000 + k)
            for name, (tree, every, extra) in trees.items():
                if slot % every == every - 1:  # the hourly schedule runs at the end of each hour
                    cpu[name] += watch(tree, dbs[name], replicas[name].url, *extra).cpu
                    for event in events:
                        if event.path and name not in event.found and detected(dbs[name], event, replicas[name].url):
                            event.found[name] = minute - event.minute
        requests = {name: len(replicas[name].log) - marks[name] for name in trees}
    finally:
        for replica in replicas.values():
            replica.__exit__(None, None, None)
    report_day(events, trees, requests, cpu, hours)


def report_day(events: list[Event], trees: dict, requests: dict[str, int], cpu: dict[str, float], hours: int) -> None:
    for name, (_tree, every, _extra) in trees.items():
        schedule = f"every {every * SLOT_MINUTES} min"
        for kind in ("new", "back-dated", "edited"):
            these = [e for e in events if e.kind == kind]
            found = sorted(e.found[name] for e in these if name in e.found)
            missed = len(these) - len(found)
            if found:
                p95 = found[min(len(found) - 1, math.ceil(0.95 * len(found)) - 1)]
                text = f"median {statistics.median(found):.0f} min, p95 {p95} min"
            else:
                text = "not found"
            row("day", f"{name} ({schedule}): {kind} ({len(these)})", text + (f", {missed} not found in {hours} h" if missed and found else ""))
        row("day", f"{name} ({schedule}): requests an hour", f"{requests[name] / hours:.0f}")
        row("day", f"{name} ({schedule}): CPU s of its runs", f"{cpu[name]:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description="issue 20: a no-change watch's cost; detection latency over a day")
    parser.add_argument("--before", metavar="DIR", type=Path, help="also the checkout in DIR (its .venv)")
    parser.add_argument("--articles", type=int, default=300)
    parser.add_argument("--hours", type=int, default=24, help="the simulated day's length")
    parser.add_argument("--repeat", type=int, default=5, help="no-change runs per variant")
    parser.add_argument("--only", choices=("nochange", "day"))
    args = parser.parse_args()
    if args.before and not (args.before / ".venv" / "bin" / "python").exists():
        parser.error(f"{args.before} has no .venv: run 'make install' there first")
    before = args.before.resolve() if args.before else None
    print(machine(), flush=True)
    with tempfile.TemporaryDirectory(prefix="npi-bench-latency-") as tmp:
        if args.only in (None, "nochange"):
            bench_nochange(Path(tmp), args.articles, args.repeat, before)
        if args.only in (None, "day"):
            bench_day(Path(tmp), args.articles, args.hours, before)
    print_table()


if __name__ == "__main__":
    main()
