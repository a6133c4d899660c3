"""What every benchmark shares: the table's rows, a measured child process, the machine line."""

from __future__ import annotations

import datetime as dt
import os
import platform
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import scrapy

ROOT = Path(__file__).resolve().parent.parent
ROWS: list[tuple[str, str, str]] = []  # (benchmark, figure, value)


def row(bench: str, figure: str, value: object) -> None:
    ROWS.append((bench, figure, str(value)))
    print(f"  {bench:<12} {figure:<52} {value}", flush=True)


def print_table() -> None:
    width = max((len(f) for _b, f, _v in ROWS), default=6)
    print("\n" + machine())
    print(f"{'benchmark':<12} | {'figure':<{width}} | value")
    print(f"{'-' * 12}-|-{'-' * width}-|------")
    for bench, figure, value in ROWS:
        print(f"{bench:<12} | {figure:<{width}} | {value}")


@dataclass
class Measured:
    code: int
    out: str
    wall: float  # seconds
    cpu: float  # user + system seconds of the process (steadier than wall on a busy machine)
    rss: int  # peak RSS, MiB


def run_child(argv: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT) -> Measured:
    """Run a process from the project's root (or ``cwd``), its stderr dropped, and measure it."""
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})},
    )
    out = proc.stdout.read() if proc.stdout else ""
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    return Measured(proc.returncode, out, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024)


def run_measured(argv: list[str]) -> tuple[int, str, float, int]:
    """Run a process; returns (exit code, stdout, wall seconds, peak RSS in MiB of that process)."""
    m = run_child(argv)
    return m.code, m.out, m.wall, m.rss


def npi(*args: str) -> list[str]:
    return [sys.executable, "-m", "npi_crawler", *args]


def machine() -> str:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} CPUs ({platform.machine()}), "
        f"{mem:.0f} GiB RAM, load {load}; Python {platform.python_version()}, Scrapy {scrapy.__version__}, "
        f"SQLite {sqlite3.sqlite_version}"
    )
