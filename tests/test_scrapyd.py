"""A real Scrapyd: started on 127.0.0.1, the project deployed with scrapyd-deploy as
schedules/README.md says, a crawl of the replica scheduled with the archive path as a setting,
and the archive checked against the replica's oracle."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, export_rows
from tests.test_cli import free_port

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def call(url: str, data: dict | None = None) -> dict:
    body = urllib.parse.urlencode(data, doseq=True).encode() if data is not None else None
    with urllib.request.urlopen(url, data=body, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture
def scrapyd(tmp_path) -> Iterator[str]:
    """scrapyd with every directory in tmp_path, on a free loopback port."""
    if not (BIN / "scrapyd").exists():
        pytest.skip("scrapyd is not installed (pip install -e '.[test]')")
    home = tmp_path / "scrapyd"
    home.mkdir()
    port = free_port()
    (home / "scrapyd.conf").write_text(
        "[scrapyd]\n"
        "bind_address = 127.0.0.1\n"
        f"http_port = {port}\n"
        f"eggs_dir = {home / 'eggs'}\n"
        f"logs_dir = {home / 'logs'}\n"
        f"dbs_dir = {home / 'dbs'}\n"
        "items_dir =\n"
        "max_proc = 1\n"
        "poll_interval = 0.2\n"
    )
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(
        [str(BIN / "scrapyd"), "--pidfile", str(home / "twistd.pid"), "--logfile", str(home / "scrapyd.log")],
        cwd=home,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if call(f"{url}/daemonstatus.json")["status"] == "ok":
                    break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail(
                "scrapyd did not start: " + (home / "scrapyd.log").read_text(errors="replace")[-2000:]
            )
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def deploy(url: str, tmp_path: Path) -> None:
    """scrapyd-deploy from a copy of the project whose scrapy.cfg points at this scrapyd (the
    README's step with the URL changed), so the build leaves the work tree untouched."""
    project = tmp_path / "project"
    shutil.copytree(
        ROOT / "npi_crawler", project / "npi_crawler", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("setup.py", "pyproject.toml", "README.md", "scrapy.cfg"):
        shutil.copy(ROOT / name, project / name)
    cfg = (project / "scrapy.cfg").read_text()
    assert "url = http://127.0.0.1:6800/" in cfg
    (project / "scrapy.cfg").write_text(cfg.replace("http://127.0.0.1:6800/", url + "/"))
    result = subprocess.run(
        [str(BIN / "scrapyd-deploy"), "--version", "test1"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"status": "ok"' in result.stdout, result.stdout + result.stderr


def test_scrapyd_deploys_and_crawls_the_replica_into_the_archive(scrapyd, replica, site, tmp_path):
    deploy(scrapyd, tmp_path)
    assert call(f"{scrapyd}/listprojects.json")["projects"] == ["npi_crawler"]
    assert call(f"{scrapyd}/listspiders.json?project=npi_crawler")["spiders"] == ["npi"]
    db = tmp_path / "data" / "npi.db"
    db.parent.mkdir()
    answer = call(
        f"{scrapyd}/schedule.json",
        {
            "project": "npi_crawler",
            "spider": "npi",
            # The archive as a setting, the site as a spider argument. Scrapyd runs plain Scrapy,
            # so the CLI's full speed for a loopback replica is given here by hand.
            "setting": [
                f"NPI_DB_PATH={db}",
                "DOWNLOAD_DELAY=0",
                "AUTOTHROTTLE_ENABLED=False",
                "CONCURRENT_REQUESTS_PER_DOMAIN=8",
            ],
            "base_url": replica.url,
        },
    )
    assert answer["status"] == "ok", answer
    job = answer["jobid"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        jobs = call(f"{scrapyd}/listjobs.json?project=npi_crawler")
        if any(j["id"] == job for j in jobs["finished"]):
            break
        time.sleep(0.3)
    else:
        pytest.fail(f"the Scrapyd job did not finish: {jobs}")
    log = next((tmp_path / "scrapyd" / "logs").rglob(f"{job}.log")).read_text(errors="replace")
    assert "npi/run_status': 'ok'" in log, log[-3000:]
    assert export_rows(str(db)) == site.expected_export(replica.url)

    # schedules/scrapyd/crawl-and-notify.sh: schedule, wait for the job, then the real
    # `npi-crawler notify` diffs the archive the Scrapyd jobs filled (its first diff: a baseline).
    if not shutil.which("curl"):
        return
    mark = len(replica.log)
    result = subprocess.run(
        [str(ROOT / "schedules" / "scrapyd" / "crawl-and-notify.sh")],
        env={
            **os.environ,
            "SCRAPYD": scrapyd,
            "NPI_DB": str(db),
            "NPI": str(ROOT / ".venv" / "bin" / "npi-crawler"),
            "NPI_BASE_URL": replica.url,
            "POLL_SECONDS": "0.3",
            "SCRAPYD_ARGS": "-d setting=DOWNLOAD_DELAY=0 -d setting=AUTOTHROTTLE_ENABLED=False",
            "NOTIFY_ARGS": f"--log-file {tmp_path / 'notify.log'}",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    # notify --quiet (for cron) prints only what needs a person; the log file has the summary
    notified = (tmp_path / "notify.log").read_text()
    assert f"baseline: {len(site.live())} articles archived, no alerts sent" in notified
    assert "/robots.txt" in replica.paths()[mark:]  # the second job crawled before notify ran
    runs = sqlite3.connect(db).execute("SELECT count(*), max(status) FROM runs").fetchone()
    assert runs == (2, "ok")
