"""The differ and the notifier as library functions over a real archive file, delivering through
real Apprise to real local endpoints (no crawl: articles are stored directly)."""

from __future__ import annotations

import re
import socket
import subprocess
import sys

import pytest

from npi_crawler.archive import Archive
from npi_crawler.archive.records import ArticleRecord
from npi_crawler.errors import ChannelError
from npi_crawler.monitor.channels import bind, load_channels, redact, scrub
from npi_crawler.monitor.delivery import DeliveryOptions, deliver
from npi_crawler.monitor.differ import DiffOptions, Scope, diff, layout_problem
from npi_crawler.runstate import parse_health
from tests.conftest import ROOT
from tests.endpoints import JsonSink, SmtpSink

N = 0


def article(lang: str = "en", title: str | None = None, published: str = "2026-11-20") -> dict:
    global N
    N += 1
    prefix = "/en" if lang == "en" else ""
    return {
        "url": f"https://npi.or.jp{prefix}/research/2026/11/{N:08d}.html",
        "lang": lang,
        "title": title or f"Article {N}",
        "published": published,
        "body": f"First paragraph of {N}.\n\nSecond paragraph.",
        "authors": [],
        "pdfs": [],
    }


def run(archive: Archive, items: list[tuple[dict, list[str]]], stats: dict | None = None) -> int:
    """A finished crawl run that stored ``items`` (article, sections)."""
    run_id = archive.start_run(
        mode="incremental", base_url="https://npi.or.jp/", langs=["ja", "en"], sections=[]
    )
    for item, sections in items:
        archive.store_article(ArticleRecord(**item), run_id=run_id)
        for section in sections:
            archive.add_listing(item["url"], section, run_id=run_id)
    stats = {"npi/list/pages": 12, "npi/article/pages": len(items), **(stats or {})}
    archive.finish_run(run_id, status="ok", counts={"list_pages": 12}, stats=stats)
    archive.store_parse_health(run_id, parse_health(stats))  # as the run state does at close
    return run_id


@pytest.fixture
def archive(db_path):
    archive = Archive.open(db_path)
    yield archive
    archive.close()


def alerts(archive: Archive) -> list[dict]:
    return list(archive.db.query("SELECT * FROM alerts ORDER BY id"))


def test_first_diff_is_a_baseline_then_only_watched_news_alert_once(archive):
    run(archive, [(article(), ["policy"]) for _ in range(4)])
    first = diff(archive)
    assert first.baseline and first.new == 4 and first.alerts == [] and first.archived == 4
    proposal, other, both = article("ja"), article(), article()
    run(archive, [(proposal, ["policy"]), (other, ["technology"]), (both, ["industry"])])
    # the second membership of `both` arrives as a separate listing, later in the same run
    archive.add_listing(both["url"], "policy", run_id=None)
    second = diff(archive)
    assert not second.baseline and second.new == 3
    assert sorted(a["article_url"] for a in second.alerts) == sorted([proposal["url"], both["url"]])
    by_url = {a["article_url"]: a for a in alerts(archive)}
    assert by_url[proposal["url"]]["title"] == f"[NPI policy/ja] {proposal['title']}"
    assert by_url[both["url"]]["tags"] == "all,en,industry,policy,industry-en,policy-en"
    assert proposal["url"] in by_url[proposal["url"]]["body"]
    assert "Date: 2026-11-20" in by_url[proposal["url"]]["body"]
    again = diff(archive)
    assert again.runs == [] and again.new == 0 and again.alerts == []
    assert len(alerts(archive)) == 2


def test_no_baseline_from_a_failed_or_broken_first_run(archive):
    down = archive.start_run(mode="incremental", base_url="x", langs=[], sections=[])
    archive.finish_run(down, status="failed", counts={}, stats={})
    assert diff(archive).baseline_scopes == []
    run(archive, [], stats={"npi/parse/miss/list_entries": 12})
    assert diff(archive).baseline_scopes == []
    run(archive, [(article(), ["policy"]) for _ in range(3)])
    first_real = diff(archive)
    assert first_real.baseline and first_real.alerts == []


def test_lang_narrows_and_widening_sections_later_does_not_flood(archive):
    run(archive, [(article(), ["policy"])])
    diff(archive, DiffOptions(scope=Scope(sections=("policy",), langs=("ja",))))
    en, ja = article("en"), article("ja")
    run(archive, [(en, ["policy"]), (ja, ["policy"])])
    result = diff(archive, DiffOptions(scope=Scope(sections=("policy",), langs=("ja",))))
    assert [a["article_url"] for a in result.alerts] == [ja["url"]]
    # twenty industry articles archived, then the user widens --section to industry
    run(archive, [(article(), ["industry"]) for _ in range(20)])
    widen = DiffOptions(scope=Scope(sections=("policy", "industry")))
    wide = diff(archive, widen)
    assert wide.alerts == [] and not wide.baseline
    assert sorted(wide.baseline_scopes) == [("en", "industry"), ("en", "policy"), ("ja", "industry")]
    news = article()
    run(archive, [(news, ["industry"])])
    assert [a["article_url"] for a in diff(archive, widen).alerts] == [news["url"]]


def test_send_latest_k_on_baseline(archive):
    items = [(article(published=f"2026-0{m}-01"), ["policy"]) for m in range(1, 6)]
    run(archive, items)
    result = diff(archive, DiffOptions(send_latest=2))
    assert [a["article_url"] for a in result.alerts] == [items[4][0]["url"], items[3][0]["url"]]


def test_edits_and_removals_are_events_and_alert_only_when_asked(archive):
    a, b = article(), article()
    run(archive, [(a, ["policy"]), (b, ["policy"])])
    diff(archive)
    run(archive, [({**a, "title": "New title"}, ["policy"])])
    archive.mark_removed(b["url"], 404)
    quiet = diff(archive)
    assert (quiet.changed, quiet.removed, quiet.alerts) == (1, 1, [])
    events = list(archive.db.query("SELECT kind, article_url, revision_id FROM events WHERE kind != 'new'"))
    assert {(e["kind"], e["article_url"]) for e in events} == {("changed", a["url"]), ("removed", b["url"])}
    old = archive.db.execute(
        "SELECT title FROM revisions WHERE id = ?", [events[0]["revision_id"]]
    ).fetchone()
    assert old[0] == a["title"]
    run(archive, [({**a, "title": "Newer title"}, ["policy"])])
    loud = diff(archive, DiffOptions(alert_changes=True, alert_removals=True))
    assert [x["title"] for x in loud.alerts] == ["[NPI policy/en] Updated: Newer title"]


def test_a_burst_over_the_flood_limit_is_one_summary(archive):
    run(archive, [(article(), ["policy"])])
    diff(archive)
    burst = [article() for _ in range(30)]
    run(archive, [(a, ["policy"]) for a in burst])
    result = diff(archive, DiffOptions(flood_limit=25))
    assert result.flood == 30 and [a["kind"] for a in result.alerts] == ["flood"]
    with JsonSink() as sink:
        deliver(archive, load_channels([sink.url()]))
    assert [p["title"] for p in sink.posts] == ["[NPI] 30 new items at once"]
    assert burst[0]["url"] in sink.posts[0]["message"] and "and 5 more" in sink.posts[0]["message"]
    assert archive.db.execute("SELECT count(*) FROM events WHERE alerted = 1").fetchone()[0] == 30


def test_a_backlog_over_the_flood_limit_is_delivered_as_one_digest(archive):
    run(archive, [(article(), ["policy"])])
    diff(archive)
    for _ in range(4):  # four runs of three new articles each, while no channel was configured
        run(archive, [(article(), ["policy"]) for _ in range(3)])
        diff(archive, DiffOptions(flood_limit=5))
    assert deliver(archive, []).pending == 12
    with JsonSink() as sink:
        result = deliver(archive, load_channels([sink.url()]), DeliveryOptions(flood_limit=5))
    assert result.sent == 1 and result.alerts_sent == 12
    assert [p["title"] for p in sink.posts] == ["[NPI] 12 new items"]


def test_layout_problem_reads_the_run_parse_health():
    def problem(run: dict, stats: dict) -> str | None:
        return layout_problem(run, parse_health(stats))

    ok = {"id": 1, "status": "ok"}
    assert problem(ok, {"npi/article/pages": 10, "npi/parse/fallback/date_url": 1}) is None
    empty_list = {"id": 2, "status": "ok"}
    assert "12 list page(s) had no entries" in problem(empty_list, {"npi/parse/miss/list_entries": 12})
    titles = {"id": 3, "status": "ok"}
    assert "4 of 6 article pages" in problem(titles, {"npi/article/pages": 6, "npi/parse/fallback/title_tag": 4})
    few = {"id": 4, "status": "ok"}
    assert problem(few, {"npi/article/pages": 2, "npi/parse/miss/title": 2}) is None
    down = {"id": 5, "status": "failed"}
    assert problem(down, {"npi/parse/miss/list_entries": 1}) is None


def test_the_parse_health_of_a_run_is_stored_as_data(archive):
    run_id = run(archive, [(article(), ["policy"])], stats={"npi/parse/fallback/title_tag": 1, "npi/parse/nomatch/title": 1})
    health = archive.parse_health(run_id)
    assert (health.article_pages, health.list_pages) == (1, 12)
    assert health.notes == {"fallback/title_tag": 1, "nomatch/title": 1}
    assert archive.rows("SELECT note, pages FROM run_parse_notes ORDER BY note") == [
        {"note": "fallback/title_tag", "pages": 1},
        {"note": "nomatch/title", "pages": 1},
    ]


def test_layout_alarm_holds_alerts_and_removals_and_warns_once(archive):
    a = article()
    run(archive, [(a, ["policy"])])
    diff(archive)
    archive.mark_removed(a["url"], 404)
    run(archive, [(article(), ["policy"])], stats={"npi/parse/miss/list_entries": 12})
    broken = diff(archive)
    assert broken.layout_problems and broken.removed == 0
    assert [x["kind"] for x in broken.alerts] == ["attention"]
    assert alerts(archive)[0]["tags"] == "admin"
    run(archive, [], stats={"npi/parse/miss/list_entries": 12})
    still = diff(archive)
    assert still.layout_problems and still.alerts == []  # one attention message per episode
    run(archive, [])
    healed = diff(archive)
    assert not healed.layout_problems and healed.removed == 1


def test_dry_run_rolls_everything_back(archive):
    run(archive, [(article(), ["policy"])])
    diff(archive)
    run(archive, [(article(), ["policy"])])
    dry = diff(archive, DiffOptions(dry_run=True))
    assert len(dry.alerts) == 1 and alerts(archive) == []
    assert archive.db.execute("SELECT count(*) FROM runs WHERE diffed_at IS NULL").fetchone()[0] == 1
    assert len(diff(archive).alerts) == 1


def test_a_killed_crawl_run_is_diffed_by_the_next_diff(archive):
    run(archive, [(article(), ["policy"])])
    diff(archive)
    killed = archive.start_run(mode="incremental", base_url="x", langs=[], sections=[])
    lost = article()
    archive.store_article(ArticleRecord(**lost), run_id=killed)
    archive.add_listing(lost["url"], "policy", run_id=killed)
    waiting = diff(archive)  # the latest run may still be crawling: its articles wait for it
    assert waiting.runs == [] and waiting.new == 0 and waiting.alerts == []
    run(archive, [])
    result = diff(archive)
    assert killed in result.runs and [x["article_url"] for x in result.alerts] == [lost["url"]]


# -- the notifier ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url,shown",
    [
        ("mailto://npi:hunter2pw@smtp.example.com?to=me@example.com", "mailto://smtp.example.com"),
        ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#general", "slack://…"),
        ("discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js", "discord://…"),
        ("ntfy://my-secret-topic", "ntfy://…"),
        ("ntfys://ntfy.sh/my-secret-topic", "ntfys://ntfy.sh"),
        ("json://user:pw@127.0.0.1:8080/hook?token=abcdef", "json://127.0.0.1"),
    ],
)
def test_redact_shows_scheme_and_host_only(url, shown):
    assert redact(url) == shown


def test_scrub_masks_the_channels_secrets():
    url = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#general"
    message = "Failed to send to slack://T1JJ3T3L2/A1BRTD4JD/x: token TIiajkdnlazkcOXrIdevi7FQ refused"
    cleaned = scrub(message, url)
    assert "TIiajkdnlazkcOXrIdevi7FQ" not in cleaned and "T1JJ3T3L2" not in cleaned


def test_channels_are_validated_up_front_without_leaking_secrets(tmp_path):
    with pytest.raises(ChannelError) as bad:
        load_channels(["json://127.0.0.1/ok", "nosuchservice://user:topsecret@example.com/x"])
    assert "#2" in str(bad.value) and "topsecret" not in str(bad.value)
    with pytest.raises(ChannelError, match="does not exist"):
        load_channels(config=str(tmp_path / "missing.yml"))
    junk = tmp_path / "junk.yml"
    junk.write_text("urls:\n  - nosuchservice://x\n")
    with pytest.raises(ChannelError, match="entry 1 is not a valid Apprise URL .* every entry must load"):
        load_channels(config=str(junk))


def test_a_channel_down_for_two_deliveries_gets_each_alert_once(archive):
    run(archive, [(article(), ["policy"])])
    diff(archive)
    run(archive, [(article(), ["policy"]), (article(), ["policy"])])
    diff(archive)
    with JsonSink() as up, JsonSink() as down:
        channels = load_channels([up.url("a"), down.url("b")])
        down.status = 500
        for _ in range(2):
            result = deliver(archive, channels, DeliveryOptions(max_attempts=2))
            assert result.failed == 2 and result.pending == 2
        assert result.stuck == 2 and "json://127.0.0.1" in result.errors[0]
        articles = [p for p in up.posts if p["title"] != "npi-crawler needs attention"]
        assert len(articles) == 2  # the channel that works got them at once, and only once
        # and, untagged (it gets every alert, attention included), it heard of the failing one: the
        # episode's start, then the run that made its alerts stuck
        assert len(up.posts) == 4 and "now stuck" in up.posts[-1]["message"]
        down.status = 200
        result = deliver(archive, channels)
        assert result.alerts_sent == 2 and result.pending == 0
        assert deliver(archive, channels).sent == 0
        assert len(up.posts) == 4 and len(down.posts) == 2 and down.refused == 4
    rows = list(archive.db.query("SELECT status, attempts FROM deliveries ORDER BY channel, alert_id"))
    assert sorted((r["status"], r["attempts"]) for r in rows) == [("sent", 1)] * 2 + [("sent", 3)] * 2


def test_a_delivery_claimed_by_another_process_is_not_sent_twice(archive):
    run(archive, [(article(), ["policy"])])
    diff(archive)
    run(archive, [(article(), ["policy"])])
    diff(archive)
    with JsonSink() as sink:
        channels = load_channels([sink.url()])
        (alert,) = archive.db.query("SELECT id FROM alerts")
        # another watch process claimed it a moment ago and is sending it
        other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        try:
            archive.db.execute(
                "INSERT INTO deliveries (alert_id, channel, label, status, attempts, last_attempt, claimed_by) "
                "VALUES (?, ?, 'x', 'sending', 0, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), ?)",
                [alert["id"], bind(channels, archive.channel_key())[0].id, f"{socket.gethostname()}:{other.pid}"],
            )
            assert deliver(archive, channels).sent == 0 and sink.posts == []
        finally:
            other.kill()
            other.wait()
        # ... and then died: its claim lapses at once (on another host: after CLAIM_SECONDS)
        assert deliver(archive, channels).alerts_sent == 1 and len(sink.posts) == 1
        archive.db.execute(
            "UPDATE deliveries SET status = 'sending', claimed_by = 'elsewhere:1', last_attempt = '2000-01-01T00:00:00Z'"
        )
        archive.db.execute("UPDATE alerts SET status = 'pending'")
        assert deliver(archive, channels).alerts_sent == 1 and len(sink.posts) == 2  # expired claim


def test_config_tags_route_sections_to_channels(archive, tmp_path):
    run(archive, [(article(), ["policy"])])
    diff(archive, DiffOptions(scope=Scope(sections=("policy", "technology"))))
    policy, tech = article(), article("ja")
    run(archive, [(policy, ["policy"]), (tech, ["technology"])])
    diff(archive, DiffOptions(scope=Scope(sections=("policy", "technology"))))
    with JsonSink() as sink:
        config = tmp_path / "apprise.yml"
        config.write_text(
            "urls:\n"
            f"  - {sink.url('slack')}:\n      tag: policy\n"
            f"  - {sink.url('mail')}:\n      tag: all\n"
            f"  - {sink.url('japanese')}:\n      tag: ja\n"
            f"  - {sink.url('ops')}:\n      tag: admin\n"
        )
        result = deliver(archive, load_channels(config=str(config)))
        assert result.pending == 0
        assert sink.titles("slack") == [f"[NPI policy/en] {policy['title']}"]
        assert sorted(sink.titles("mail")) == sorted(
            [f"[NPI policy/en] {policy['title']}", f"[NPI technology/ja] {tech['title']}"]
        )
        assert sink.titles("japanese") == [f"[NPI technology/ja] {tech['title']}"]
        assert sink.titles("ops") == []


def test_digest_is_one_message_per_channel(archive):
    run(archive, [(article(), ["policy"])])
    diff(archive)
    news = [article() for _ in range(3)]
    run(archive, [(a, ["policy"]) for a in news])
    diff(archive)
    with JsonSink() as sink:
        result = deliver(archive, load_channels([sink.url()]), DeliveryOptions(digest=True))
    assert result.sent == 1 and result.alerts_sent == 3
    assert sink.posts[0]["title"] == "[NPI] 3 new items"
    assert all(a["url"] in sink.posts[0]["message"] for a in news)


def test_mailto_delivers_to_a_real_smtp_server(archive):
    run(archive, [(article(), ["policy"])])
    diff(archive)
    news = article(title="Japan's Economic Security in the New Era")
    run(archive, [(news, ["policy"])])
    diff(archive)
    with SmtpSink() as smtp:
        url = f"mailto://127.0.0.1:{smtp.port}?from=npi@example.com&to=watcher@example.com&mode=insecure"
        assert deliver(archive, load_channels([url])).alerts_sent == 1
        assert len(smtp.messages) == 1
        message = smtp.messages[0]
    assert message["Subject"] == "[NPI policy/en] Japan's Economic Security in the New Era"
    assert message["To"] == "watcher@example.com"
    assert news["url"] in message.get_body(("plain",)).get_content()


def test_attention_goes_to_the_admin_tag_or_everyone(archive, tmp_path):
    run(archive, [(article(), ["policy"])])
    diff(archive)
    run(archive, [], stats={"npi/parse/miss/list_entries": 3})
    diff(archive)
    with JsonSink() as sink:
        config = tmp_path / "apprise.txt"
        config.write_text(f"policy={sink.url('slack')}\n")  # TEXT format; nobody tagged admin
        deliver(archive, load_channels(config=str(config)))
    assert sink.titles("slack") == ["npi-crawler needs attention"]


def test_the_config_examples_in_the_docs_are_valid_apprise_configs(tmp_path):
    text = (ROOT / "docs" / "alerts.md").read_text(encoding="utf-8")
    yaml_block = re.search(r"```yaml\n(.*?)```", text, re.S)[1]
    text_block = re.search(r"`alerts.txt`\): `tags=URL`, one per line.\n\n```\n(.*?)```", text, re.S)[1]
    loaded = []
    for name, block in (("alerts.yml", yaml_block), ("alerts.txt", text_block)):
        path = tmp_path / name
        path.write_text(block)
        channels = load_channels(config=str(path))
        loaded.append(sorted((sorted(c.tags), c.label) for c in channels))
    assert loaded[0] == loaded[1]
    assert [tags for tags, _label in loaded[0]] == [["admin"], ["all"], ["en"], ["policy"]]
    assert all("app-password" not in label and "TIiajk" not in label for _tags, label in loaded[0])


def test_failures_are_recorded_without_the_channels_secrets(archive):
    run(archive, [(article(), ["policy"])])
    diff(archive)
    run(archive, [(article(), ["policy"])])
    diff(archive)
    with JsonSink() as sink:
        sink.status = 500
        url = sink.url("hook").replace("json://", "json://alice:s3cr3tpw@") + "?token=t0k3nvalue"
        result = deliver(archive, load_channels([url]))
    assert result.failed == 1 and result.errors
    stored = archive.db.execute("SELECT last_error FROM alerts").fetchone()[0]
    labels = [r[0] for r in archive.db.execute("SELECT label FROM deliveries")]
    everything = " ".join([*result.errors, stored, *labels])
    assert "500" in everything
    assert "s3cr3tpw" not in everything and "t0k3nvalue" not in everything and "alice" not in everything
