"""Crash safety under SIGKILL (see tests/crash.py).

CI runs a reduced count of kills (CI_KILLS); the benchmark command (``python -m benchmarks``)
runs the full count (at least 20). The watch case kills also right after a message was delivered
(the window between Apprise's send and the delivery's commit: see docs/alerts.md).
"""

from __future__ import annotations

import signal

import pytest

from tests.crash import AlertSink, check_alerts_exactly_once, crawl_command, run_crash_test, watch_command

CI_KILLS = 6  # reduced for CI time; the benchmark command runs 24


def test_sigkill_at_random_moments_loses_nothing_and_breaks_nothing(tmp_path):
    report = run_crash_test(tmp_path, kills=CI_KILLS, seed=7, command=crawl_command)
    assert len(report.kills) == CI_KILLS
    assert {phase for phase, _ in report.kills} >= {"crawl", "write"}
    assert report.articles > 40
    # Kills left WARC files half-written; every pointer read back after each kill, and in the end
    # warcio read every file whole (tests/crash.py: check_warc_pointers, check_warc_files).
    assert report.warc_left_open >= 1 and report.warc_pointers > 0 and report.warc_records > report.articles


def test_sigkill_during_watch_alerts_every_new_proposal_exactly_once(tmp_path):
    with AlertSink() as sink:
        report = run_crash_test(
            tmp_path,
            kills=CI_KILLS,
            seed=11,
            command=watch_command,
            alert_sink=sink,
            alerts=check_alerts_exactly_once,
            ok_codes=(0, 3),
        )
    assert len(report.kills) == CI_KILLS
    assert sink.received, "proposals were published and alerted"
    assert report.duplicates <= sum(1 for phase, _ in report.kills if phase == "delivery")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_is_a_clean_exit_and_repeats_no_alert(tmp_path, signum):
    """SIGTERM (systemd, timeout) and SIGINT (Ctrl-C) at random moments of watch: exit 143/130
    within the bound, the run interrupted (never ok, never left running), then the archive equals
    the site and every new proposal was alerted exactly once: no repeat even in the delivery phase."""
    with AlertSink() as sink:
        report = run_crash_test(
            tmp_path,
            kills=4,
            seed=13 + signum,
            command=watch_command,
            alert_sink=sink,
            alerts=check_alerts_exactly_once,
            ok_codes=(0, 3),
            stop_signal=signum,
        )
    assert len(report.kills) == 4 and report.duplicates == 0
    assert 128 + signum in report.exit_codes
