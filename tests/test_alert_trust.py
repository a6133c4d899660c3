"""Alerts a watcher trusts (issue 21, points 1, 2 and 5): loud at the first failed delivery, silent
when all is well, and ``doctor`` one line per channel.

End to end as cron runs it: the real CLI crawls the replica over HTTP and delivers through real
Apprise to local JSON endpoints (tests/endpoints.JsonSink), one of which can answer 500."""

from __future__ import annotations

import datetime as dt

import pytest

from npi_crawler.monitor.trouble import next_attempt, run_pace
from tests.conftest import run_cli
from tests.endpoints import JsonSink
from tests.site import new_article
from tests.test_cli import free_port

ATTENTION = "npi-crawler needs attention"


@pytest.fixture
def sink():
    with JsonSink() as sink:
        yield sink


@pytest.fixture
def admin():
    with JsonSink() as sink:
        yield sink


def watch(replica, db_path, *channel, code=0, quiet=True):
    args = ["watch", "--db", db_path, "--base-url", replica.url, *channel, *(["--quiet"] if quiet else [])]
    result = run_cli(*args, env={"NPI_NOTIFY_URLS": ""})
    assert result.returncode == code, result.stdout + result.stderr
    return result


def policy_and_admin(tmp_path, sink, admin, *, max_attempts):
    """The options of a config that sends proposals to ``sink`` and attention to ``admin``."""
    config = tmp_path / "alerts.txt"
    config.write_text(f"policy={sink.url('policy')}\nadmin={admin.url('admin')}\n")
    return ("--config", str(config), "--max-attempts", str(max_attempts))


def proposals(site, k, first=1):
    return [new_article(site, lang="ja" if i % 2 else "en", sections=["policy"], n=i) for i in range(first, first + k)]


@pytest.mark.slow
def test_a_channel_down_from_the_start_of_a_run_is_loud_then_each_alert_is_delivered_once(replica, site, db_path, sink):
    notify = ("--notify", sink.url())
    watch(replica, db_path, *notify)  # the baseline
    proposals(site, 2)
    sink.status = 500
    down = watch(replica, db_path, *notify, code=3)
    # Which channel (redacted, and its tags), how many alerts, why, and when the next attempt is:
    # on stderr, which cron mails even with --quiet, in the very run that met the failure.
    lines = [line for line in down.stderr.splitlines() if "refused" in line]
    assert len(lines) == 1, down.stderr
    assert lines[0].startswith(f"{ATTENTION}: json://127.0.0.1 (no tags: every alert) refused 2 alert(s) this run (")
    assert "error=500" in lines[0] and "the next run (watch or notify) sends them again" in lines[0]
    assert down.stdout.startswith("run 2 (incremental)") and "failed: json://127.0.0.1" in down.stdout
    assert str(sink.url().split(":")[2].split("/")[0]) not in down.stderr  # no port: the one redactor
    sink.status = 200
    up = watch(replica, db_path, *notify)
    assert sorted(p["title"] for p in sink.posts) == sorted(set(p["title"] for p in sink.posts))
    assert len(sink.posts) == 2 and up.stderr == ""
    watch(replica, db_path, *notify)
    assert len(sink.posts) == 2


@pytest.mark.slow
def test_the_admin_channel_hears_of_a_failing_channel_once_per_episode_never_through_it(
    replica, site, db_path, sink, admin, tmp_path
):
    channels = policy_and_admin(tmp_path, sink, admin, max_attempts=3)
    watch(replica, db_path, *channels)
    proposals(site, 1)
    sink.status = 500
    first = watch(replica, db_path, *channels, code=3)
    assert "json://127.0.0.1 (tags: policy) refused 1 alert(s)" in first.stderr
    assert [p["title"] for p in admin.posts] == [ATTENTION]
    assert "json://127.0.0.1 (tags: policy): 1 alert(s) refused this run" in admin.posts[0]["message"]
    assert "told the admin channel(s) json://127.0.0.1 of the failures" in first.stdout
    assert sink.posts == []  # a dead channel is never told of its own death
    second = watch(replica, db_path, *channels, code=3)  # the same episode: stderr again, the admin not
    assert "refused 1 alert(s)" in second.stderr and len(admin.posts) == 1
    sink.status = 200
    watch(replica, db_path, *channels)
    assert len(sink.posts) == 1 and len(admin.posts) == 1
    proposals(site, 1, first=5)
    sink.status = 500
    watch(replica, db_path, *channels, code=3)  # a new episode: the admin hears of it again
    assert len(admin.posts) == 2 and sink.posts[1:] == []


@pytest.mark.slow
def test_alerts_that_become_stuck_are_told_to_the_admin_channel(replica, site, db_path, sink, admin, tmp_path):
    channels = policy_and_admin(tmp_path, sink, admin, max_attempts=2)
    watch(replica, db_path, *channels)
    proposals(site, 1)
    sink.status = 500
    watch(replica, db_path, *channels, code=3)
    stuck = watch(replica, db_path, *channels, code=3)
    assert "1 alert(s) stuck after 2+ failed deliveries" in stuck.stderr
    assert len(admin.posts) == 2 and "now stuck after 2 failed runs" in admin.posts[1]["message"]


def test_the_next_attempt_follows_the_pace_of_the_runs():
    hour = dt.timedelta(hours=1)
    start = dt.datetime(2026, 11, 24, 12, tzinfo=dt.timezone.utc)
    hourly = [start - i * hour for i in range(6)] + [start - 7 * 24 * hour]  # newest first, and one old run
    assert run_pace(hourly) == hour
    assert next_attempt(run_pace(hourly)).endswith("in about 1 h at this archive's pace")
    assert run_pace([start, start - hour]) is None  # two runs say nothing about a schedule
    assert next_attempt(None) == "the next run (watch or notify) sends them again"
    assert run_pace([start, start + hour, start - hour, None]) is None  # a clock set back: no pace from it
    assert "in about 15 min" in next_attempt(dt.timedelta(minutes=15))
    assert "in about 7 d" in next_attempt(dt.timedelta(days=7))


# -- silent when all is well (issue 21.2) ------------------------------------------------------------


@pytest.fixture
def plain_site(site):
    """A healthy replica as the issue found it: author names only in the author links' text (the
    documented fallback of the author_name key), expert pages without a position."""
    site.plain_author_links = True
    site.expert_positions = False
    return site


def test_probe_shows_a_documented_fallback_as_a_note_not_a_warning(plain_site, replica):
    article = next(a for a in plain_site.live() if a.authors)
    result = run_cli("probe", replica.url.rstrip("/") + article.path)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = {line[2:14].strip(): line[15:] for line in result.stdout.splitlines() if line.startswith("  ") and line[2] != " "}
    assert "nomatch/author_name" in lines["notes"] and lines["warnings"] == "none"


@pytest.mark.slow
def test_notify_quiet_after_another_crawler_says_only_what_needs_a_person(replica, site, db_path, sink):
    """The Scrapyd recipe (crawl-and-notify.sh) runs `notify --quiet` from cron after the job: it
    printed every summary (a mail each hour), and nothing said that the job had reached nothing."""
    notify = ("notify", "--db", db_path, "--notify", sink.url(), "--quiet")
    run_cli("crawl", "--db", db_path, "--base-url", replica.url)
    baseline = run_cli(*notify)
    assert baseline.returncode == 0 and "crawl      run 1" in baseline.stdout  # its warnings: a broken PDF
    run_cli("crawl", "--db", db_path, "--base-url", replica.url)
    quiet = run_cli(*notify)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    dead = f"http://127.0.0.1:{free_port()}/"
    assert run_cli("crawl", "--db", db_path, "--base-url", dead, "-s", "RETRY_TIMES=0").returncode == 1
    loud = run_cli(*notify)
    assert loud.returncode == 3
    assert f"  crawl      run 3 (incremental) of {dead}: failed" in loud.stdout
    assert loud.stderr == f"{ATTENTION}: the crawl of run 3 reached nothing (see its run_errors)\n"


@pytest.mark.slow
def test_a_run_that_trips_the_layout_alarm_never_says_ok(replica, site, db_path, sink):
    watch(replica, db_path, "--notify", sink.url())
    site.layout = "redesign"
    broken = watch(replica, db_path, "--notify", sink.url(), code=3)
    first = broken.stdout.splitlines()[0]
    assert first.startswith("run 2 (incremental) of ") and ": layout_break in " in first and " ok" not in first
    status = run_cli("status", "--db", db_path)
    assert status.returncode == 3
    header, _columns, row = status.stdout.splitlines()[:3]
    assert header.endswith(", layout_break") and row.split()[5] == "layout_break", status.stdout


@pytest.mark.slow
def test_quiet_is_silent_on_a_healthy_site_that_delivers_and_loud_when_a_channel_is_down(
    plain_site, replica, db_path, sink, tmp_path
):
    """Issue 21's "done when": the author names only in the link text (the documented fallback),
    watch --quiet delivering new proposals prints nothing and exits 0; one channel down: it prints
    and exits 3."""
    log = tmp_path / "watch.log"
    channel = ("--notify", sink.url(), "--log-file", str(log))
    watch(replica, db_path, *channel)  # the baseline (it prints: the replica has a broken PDF, a warning)
    published = proposals(plain_site, 2)
    healthy = watch(replica, db_path, *channel)
    assert (healthy.stdout, healthy.stderr) == ("", "")
    assert len(sink.posts) == 2
    for article in published:  # each alert names every author
        (post,) = [p for p in sink.posts if p["message"].endswith(article.path)]
        assert all(name in post["message"] for name, _path in article.authors)
    summary = log.read_text().split("[npi-crawler] run 2 ")[1]
    assert "  warnings   0\n" in summary and "  notes      " in summary  # notes there were: counted, not printed
    status = run_cli("status", "--db", db_path)
    header, row = status.stdout.splitlines()[1:3]
    assert header.split()[-3:] == ["warn", "notes", "diff"] and row.split()[0] == "2"
    assert row.split()[-3] == "0" and int(row.split()[-2]) > 0, status.stdout  # warnings 0, notes counted
    assert status.returncode == 0 and status.stdout.endswith("healthy\n")
    proposals(plain_site, 1, first=7)
    sink.status = 500
    down = watch(replica, db_path, *channel, code=3)
    assert down.stdout.startswith("run 3 (incremental)") and "refused 1 alert(s) this run" in down.stderr


@pytest.mark.slow
def test_a_crawl_whose_pages_trip_the_layout_alarm_says_so_even_quiet(replica, site, db_path):
    """Fallbacks are notes now: a redesign that they still read would otherwise crawl silently."""
    site.layout = "redesign-articles"  # the lists as before; every article through fallbacks
    result = run_cli("crawl", "--db", db_path, "--base-url", replica.url, "--quiet")
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stdout.startswith(f"run 1 (incremental) of {replica.url}: layout_break in ")
    assert result.stderr.startswith(f"{ATTENTION}: the site's layout seems to have changed (run 1: ")
    assert "article pages had no title, date or body where expected" in result.stderr
    status = run_cli("status", "--db", db_path)  # not diffed by any watch: its pages say it all the same
    assert status.returncode == 3 and status.stdout.splitlines()[0].endswith(", layout_break")
    assert "tripped the layout alarm" in status.stderr


@pytest.mark.slow
def test_a_pdf_that_fails_the_same_way_again_is_a_note_not_a_warning_every_run(replica, site, db_path):
    """A PDF answering 503 is retried by every run: it warned (and cron mailed) every hour for
    one dead link on the site. It warns when it starts failing; again the same way, it is counted."""
    pdf = next(p for a in site.live() for p in a.pdfs if not p.endswith("broken.pdf"))
    crawl = ("crawl", "--db", db_path, "--base-url", replica.url, "--quiet", "-s", "RETRY_TIMES=0")
    run_cli(*crawl)  # the first crawl: its own warning (the replica's broken PDF)
    new_article(site, lang="en", sections=["technology"], n=4).pdfs.append(pdf.replace(".pdf", "-new.pdf"))
    replica.add_fault(pdf.replace(".pdf", "-new.pdf"), "status", status=503)
    first = run_cli(*crawl)
    assert first.returncode == 0 and "warnings   1 (warnings/pdf/http_503: 1)" in first.stdout, first.stdout
    again = run_cli(*crawl)  # retried, and the same answer
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
    summary = run_cli(*crawl[:-3], "-s", "RETRY_TIMES=0", "--verbose")
    assert "notes/pdf/http_503: 1" in summary.stdout and "warnings   0" in summary.stdout


@pytest.mark.slow
def test_a_listed_article_that_answers_404_run_after_run_is_an_error_once(replica, site, db_path):
    """A list that links to a page the site lost: every run fetches the listed article again (it is
    not archived), and every run was an error, a mail each hour for one broken link of the site.
    The first run that meets it says so; the same failure again is counted as a note."""
    crawl = ("crawl", "--db", db_path, "--base-url", replica.url, "--quiet", "-s", "RETRY_TIMES=0")
    run_cli(*crawl)
    lost = new_article(site, lang="en", sections=["policy"], n=5)
    replica.add_fault(lost.path, "status", status=404)
    first = run_cli(*crawl)
    assert first.returncode == 0 and "  errors     1\n    article:http_404: " in first.stdout, first.stdout
    again = run_cli(*crawl)
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
    verbose = run_cli(*crawl[:-3], "-s", "RETRY_TIMES=0", "--verbose")
    assert "notes/errors/article:http_404: 1" in verbose.stdout and "  errors     0\n" in verbose.stdout


@pytest.mark.slow
def test_quiet_prints_alerts_no_channel_will_carry(replica, site, db_path, tmp_path):
    """Silent when broken was: NPI_NOTIFY_URLS missing from the cron environment, or a tag that
    matches no channel, and the alerts went nowhere without a word."""
    watch(replica, db_path)  # the baseline, no channel
    proposals(site, 1)
    waiting = watch(replica, db_path)
    assert "no channel configured (--notify, --config): alerts wait in the outbox" in waiting.stdout
    config = tmp_path / "alerts.txt"
    config.write_text("industry=json://127.0.0.1:9/never\n")  # a tag no proposal carries
    unrouted = watch(replica, db_path, "--config", str(config))
    assert "1 unrouted" in unrouted.stdout and unrouted.stderr == ""
    quiet = watch(replica, db_path, "--config", str(config))  # nothing new: nothing to say
    assert (quiet.stdout, quiet.stderr) == ("", "")
