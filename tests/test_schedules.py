"""schedules/ is part of the product: the crontab parses, the systemd units verify, the workflow
is valid YAML with the expected schedule, and every file runs the commands the docs describe."""

from __future__ import annotations

import configparser
import datetime as dt
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from croniter import croniter

from npi_crawler import settings as project_settings
from npi_crawler.archive.runlock import run_lock
from npi_crawler.constants import EXIT_LOCKED
from tests.conftest import ROOT, export_rows
from tests.site import new_article

SCHEDULES = ROOT / "schedules"
NPI = "/opt/npi-crawler/.venv/bin/npi-crawler"
DB = "/var/lib/npi-crawler/npi.db"


def crontab_entries() -> list[tuple[str, str]]:
    entries = []
    for line in (SCHEDULES / "cron" / "npi-crawler.crontab").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or re.match(r"^[A-Z_]+=", line):
            continue
        fields = line.split(None, 5)
        assert len(fields) == 6, f"not a crontab entry: {line}"
        entries.append((" ".join(fields[:5]), fields[5]))
    return entries


def test_crontab_line_parses_and_runs_every_5_minutes():
    entries = crontab_entries()
    assert len(entries) == 1  # the rolling sweep does what the weekly full pass did: no second line
    (expr, command), = entries
    assert croniter.is_valid(expr), expr
    runs = croniter(expr, dt.datetime(2026, 11, 22, 0, 0))
    times = [runs.get_next(dt.datetime) for _ in range(13)]
    assert {b - a for a, b in zip(times[:-1], times[1:], strict=True)} == {dt.timedelta(minutes=5)}
    args = shlex.split(command.rsplit(";", 1)[1])
    assert args[:2] == [NPI, "watch"] and "--full" not in args
    assert args[args.index("--db") + 1] == DB and "--quiet" in args and "--log-file" in args
    text = (SCHEDULES / "cron" / "npi-crawler.crontab").read_text()
    assert "flock " not in text.replace("flock(1)", "")  # the run lock makes it unnecessary


def test_logrotate_snippet_covers_the_crontab_log():
    snippet = (SCHEDULES / "cron" / "logrotate.conf").read_text()
    log = shlex.split(crontab_entries()[0][1])[-1]
    assert log.startswith("/var/log/npi-crawler/") and "/var/log/npi-crawler/*.log {" in snippet
    if shutil.which("logrotate"):
        result = subprocess.run(
            ["logrotate", "--debug", str(SCHEDULES / "cron" / "logrotate.conf")],
            capture_output=True,
            text=True,
        )
        assert "error" not in result.stderr.lower().replace("missingok", ""), result.stderr


def read_unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string((SCHEDULES / "systemd" / name).read_text())
    return parser


def test_systemd_units_have_the_required_keys():
    name = "npi-watch"
    service = read_unit(f"{name}.service")
    s = service["Service"]
    assert s["Type"] == "oneshot"
    assert s["User"] == "npi" and s["StateDirectory"] == "npi-crawler"
    for key, value in {
        "NoNewPrivileges": "true",
        "ProtectSystem": "strict",
        "ProtectHome": "true",
        "PrivateTmp": "true",
        "UMask": "0077",
    }.items():
        assert s[key] == value, key
    assert s["SuccessExitStatus"].split() == [str(EXIT_LOCKED), str(128 + signal.SIGTERM)]
    # systemd's stop (SIGTERM, then SIGKILL after TimeoutStopSec) must outlast the stop bound: the
    # crawl's grace period, or one message's send (Apprise's 4 s connect + our read timeout)
    from npi_crawler.monitor.channels import READ_TIMEOUT

    bound = max(project_settings.NPI_STOP_GRACE, 4 + READ_TIMEOUT)
    assert int(s["TimeoutStopSec"]) >= bound + 10
    assert s["EnvironmentFile"].startswith("-/etc/npi-crawler/")
    args = shlex.split(s["ExecStart"])
    assert args[:2] == [NPI, "watch"] and "--full" not in args
    assert args[args.index("--db") + 1] == DB
    assert DB.startswith("/var/lib/" + s["StateDirectory"] + "/")
    assert "network-online.target" in service["Unit"]["After"]
    timer = read_unit(f"{name}.timer")
    t = timer["Timer"]
    assert t["Persistent"] == "true" and t["RandomizedDelaySec"]
    assert t["Unit"] == f"{name}.service"
    assert timer["Install"]["WantedBy"] == "timers.target"
    assert t["OnCalendar"] == "*:0/5"  # every 5 minutes
    assert int(t["RandomizedDelaySec"].removesuffix("s")) < 5 * 60  # never delayed into the next run's slot


def test_systemd_units_pass_systemd_analyze_verify(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    # verify checks that ExecStart's program exists: point the units at this checkout's venv, and
    # everything else is verified as shipped.
    npi = ROOT / ".venv" / "bin" / "npi-crawler"
    assert npi.exists()
    for unit in (SCHEDULES / "systemd").iterdir():
        text = unit.read_text().replace(NPI, str(npi))
        (tmp_path / unit.name).write_text(text)
    units = sorted(str(p) for p in tmp_path.iterdir())
    assert len(units) == 2
    result = subprocess.run(
        ["systemd-analyze", "verify", *units], capture_output=True, text=True, cwd=tmp_path
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    ours = [line for line in output.splitlines() if "npi-watch" in line]
    assert ours == [], output
    # systemd's own rating of the hardening (0 = locked down, 10 = none): keep it "OK" or better
    if (
        "--offline"
        in subprocess.run(["systemd-analyze", "security", "--help"], capture_output=True, text=True).stdout
    ):
        for service in ("npi-watch.service",):
            result = subprocess.run(
                ["systemd-analyze", "security", "--offline=yes", service],
                capture_output=True,
                text=True,
                cwd=tmp_path,
            )
            level = re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout + result.stderr)
            assert level and float(level[1]) <= 2.5, result.stdout[-2000:]
    # and verify does catch a broken unit, so the check above can fail
    bad = tmp_path / "npi-watch.service"
    bad.write_text(bad.read_text().replace(str(npi), "/nonexistent/npi-crawler"))
    result = subprocess.run(["systemd-analyze", "verify", str(bad)], capture_output=True, text=True)
    assert result.returncode != 0


def test_workflow_is_valid_yaml_with_the_schedules_and_secrets():
    text = (SCHEDULES / "github-actions" / "npi-watch.yml").read_text()
    workflow = yaml.safe_load(text)
    on = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads `on` as true
    crons = [entry["cron"] for entry in on["schedule"]]
    assert crons == ["*/5 * * * *"]
    assert all(croniter.is_valid(c) for c in crons)
    assert "workflow_dispatch" in on
    assert workflow["concurrency"]["cancel-in-progress"] is False
    assert workflow["permissions"] == {"contents": "write"}
    steps = workflow["jobs"]["watch"]["steps"]
    watch = next(s for s in steps if s.get("id") == "watch")
    assert watch["env"]["NPI_NOTIFY_URLS"] == "${{ secrets.NPI_NOTIFY_URLS }}"
    assert watch["env"]["FULL"] == "${{ inputs.full && '--full' || '' }}"  # by hand only
    assert "npi-crawler watch --db" in watch["run"]
    names = [s.get("name", "") for s in steps]
    restore = names.index("Restore the archive from the data branch")
    save = names.index("Save the archive to the data branch")
    assert restore < names.index("Watch") < save
    assert steps[save]["if"].startswith("always()")
    assert "secrets." not in "".join(s.get("run", "") for s in steps)  # secrets only via env
    assert "uses" in steps[0] and steps[0]["uses"].startswith("actions/checkout@")


def test_workflow_matches_githubs_workflow_schema():
    checker = Path(sys.executable).parent / "check-jsonschema"
    if not checker.exists():
        pytest.skip("check-jsonschema is not installed (pip install -e '.[test]')")
    workflow = SCHEDULES / "github-actions" / "npi-watch.yml"
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.github-workflows", str(workflow)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_scrapy_cfg_has_the_documented_deploy_target():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "scrapy.cfg")
    assert cfg["settings"]["default"] == "npi_crawler.settings"
    assert cfg["deploy"]["url"] == "http://127.0.0.1:6800/"
    assert cfg["deploy"]["project"] == "npi_crawler"
    conf = configparser.ConfigParser()
    conf.read(SCHEDULES / "scrapyd" / "scrapyd.conf")
    assert conf["scrapyd"]["bind_address"] == "127.0.0.1" and conf["scrapyd"]["http_port"] == "6800"


def test_readme_names_every_file_of_schedules():
    readme = (SCHEDULES / "README.md").read_text()
    for path in SCHEDULES.rglob("*"):
        if path.is_file() and path.name != "README.md":
            assert str(path.relative_to(SCHEDULES)) in readme, (
                f"schedules/README.md does not mention {path.name}"
            )


def test_the_crontab_line_runs_as_written(tmp_path, replica, site):
    """The crontab's own environment and command line, run by /bin/sh as cron would, with only the
    installation paths moved into tmp_path."""
    text = (SCHEDULES / "cron" / "npi-crawler.crontab").read_text()
    env = dict(re.findall(r"^([A-Z_]+)=(.*)$", text, re.M))
    assert env["NPI_CRAWLER_SETTINGS"] == "/etc/npi-crawler/npi-crawler.toml"
    db, log = tmp_path / "npi.db", tmp_path / "watch.log"
    settings, secrets = tmp_path / "npi-crawler.toml", tmp_path / "npi-crawler.env"
    settings.write_text(f'db = "{db}"\nbase_url = "{replica.url}"\n')
    secrets.write_text('NPI_NOTIFY_URLS="json://127.0.0.1:9/unused"\n')
    command = crontab_entries()[0][1]
    for old, new in {
        "/etc/npi-crawler/npi-crawler.env": str(secrets),
        NPI: str(ROOT / ".venv" / "bin" / "npi-crawler"),
        DB: str(db),
        "/var/log/npi-crawler/watch.log": str(log),
    }.items():
        command = command.replace(old, new)
    env = {**env, "NPI_CRAWLER_SETTINGS": str(settings), "PYTHONWARNINGS": "ignore", "HOME": str(tmp_path)}

    def run():
        return subprocess.run(
            [env["SHELL"], "-c", command], env=env, capture_output=True, text=True, timeout=120
        )

    first = run()
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("run 1 (incremental) of " + replica.url)  # a PDF it cannot read: mailed
    assert export_rows(str(db)) == site.expected_export(replica.url)
    # while another run holds the lock: exit 75, nothing printed (no mail), the reason in the log
    with run_lock(str(db), "watch --full"):
        second = run()
    assert (second.returncode, second.stdout, second.stderr) == (EXIT_LOCKED, "", "")
    assert "another npi-crawler run is using" in log.read_text().splitlines()[-1]
    # the comment's promise: a healthy run prints nothing (no mail), whatever notes it counted
    site.plain_author_links = True
    new_article(site, lang="en", sections=["technology"], n=3)  # read through the documented fallback
    third = run()
    assert (third.returncode, third.stdout, third.stderr) == (0, "", ""), third.stdout
    # (the new article's, and those of the known articles the rolling sweep re-read: the same markup)
    assert re.search(r"^  notes      [1-9]\d* ", log.read_text(), re.M)
