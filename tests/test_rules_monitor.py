"""Rules, section joins, held alerts and message limits in the change monitor, as library functions
over a real archive file, delivering through real Apprise to a local JSON endpoint (no crawl:
articles and PDF texts are stored directly)."""

from __future__ import annotations

import pytest

from npi_crawler.archive import Archive
from npi_crawler.archive.records import ArticleRecord
from npi_crawler.monitor.channels import load_channels
from npi_crawler.monitor.delivery import DeliveryOptions, deliver
from npi_crawler.monitor.differ import DiffOptions, diff
from npi_crawler.monitor.messages_fit import Limits, fits
from npi_crawler.rules.model import rules_from_table
from tests.endpoints import JsonSink
from tests.test_monitor import article, run

RULES = rules_from_table(
    {
        "rule": [
            {"name": "chips", "any": ["semiconductor", "半導体"]},
            {"name": "econsec", "any": ["economic security", "経済安全保障"], "tags": ["econsec", "ja-team"]},
        ]
    },
    "rules.toml",
)
BROKEN = {"npi/parse/fallback/title_tag": 5, "npi/article/pages": 5}  # stats of a run in a new layout


@pytest.fixture
def archive(db_path):
    with Archive.open(db_path) as archive:
        yield archive


def with_body(item: dict, body: str, title: str | None = None) -> dict:
    return {**item, "body": body, "title": title or item["title"]}


def by_url(result) -> dict[str, dict]:
    return {a["article_url"]: a for a in result.alerts}


def test_rules_alert_new_articles_once_with_the_union_of_tags(archive):
    run(archive, [(article(), ["policy"])])
    first = diff(archive, DiffOptions(rules=RULES))
    assert first.baseline and first.baseline_rules == ["chips", "econsec"] and first.alerts == []
    policy_chips = with_body(article(), "Semiconductors and economic security.")
    tech_chips = with_body(article("ja"), "次世代半導体の供給網。")
    pdf_only = {**article(), "pdfs": ["https://npi.or.jp/en/research/data/a.pdf"]}
    nothing = with_body(article(), "Nothing to see.")
    proposal = with_body(article("ja"), "提言の本文。")
    run_id = run(
        archive,
        [(policy_chips, ["policy"]), (tech_chips, ["technology"]), (pdf_only, ["diplomacy"]), (nothing, ["economy"]),
         (proposal, ["policy"])],
    )
    # the PDF fetched in the same run: its text is archived before the diff runs
    archive.store_pdf(pdf_only["pdfs"][0], status="ok", run_id=run_id, text="A note on SEMICONDUCTOR supply.", size=1)
    result = diff(archive, DiffOptions(rules=RULES))
    alerts = by_url(result)
    assert sorted(alerts) == sorted([policy_chips["url"], tech_chips["url"], pdf_only["url"], proposal["url"]])
    both = alerts[policy_chips["url"]]
    assert both["tags"] == ["all", "en", "policy", "policy-en", "chips", "econsec", "ja-team"]
    assert both["rules"] == ["chips", "econsec"]
    # the match is in the excerpt the alert shows: no snippet repeats it
    assert "\nRules: chips, econsec\n\nSemiconductors and economic security.\n" in both["body"]
    assert "Match in" not in both["body"]
    assert alerts[tech_chips["url"]]["tags"] == ["chips"]  # a rule-only match does not get `all`
    assert alerts[tech_chips["url"]]["title"] == f"[NPI technology/ja] {tech_chips['title']}"
    assert "Match in" not in alerts[tech_chips["url"]]["body"]
    assert f"Match in PDF {pdf_only['pdfs'][0]}: A note on [SEMICONDUCTOR] supply." in alerts[pdf_only["url"]]["body"]
    assert alerts[proposal["url"]]["tags"] == ["all", "ja", "policy", "policy-ja"]
    stored = archive.rows("SELECT rules FROM alerts ORDER BY id")
    assert [r["rules"] for r in stored] == ["chips,econsec", "chips", "chips", None]
    assert diff(archive, DiffOptions(rules=RULES)).alerts == []


def test_a_new_rule_is_a_baseline_for_itself_and_send_latest_sends_its_latest_matches(archive):
    old = [with_body(article(published=f"2026-0{m}-01"), "Quantum technology.") for m in range(1, 5)]
    run(archive, [(a, ["economy"]) for a in old])
    diff(archive, DiffOptions(rules=RULES))
    quantum = rules_from_table({"rule": [{"name": "quantum", "any": ["quantum"]}]}, "f")
    fresh = with_body(article(published="2026-05-01"), "Quantum again.")
    run(archive, [(fresh, ["economy"])])
    added = diff(archive, DiffOptions(rules=RULES + quantum, send_latest=2))
    assert added.baseline_rules == ["quantum"]
    # no flood of the back catalogue; --send-latest 2: its two newest matches, its tags only
    assert [a["article_url"] for a in added.alerts] == [fresh["url"], old[3]["url"]]
    assert {tuple(a["tags"]) for a in added.alerts} == {("quantum",)}
    later = with_body(article(published="2026-06-01"), "More on quantum computing.")
    run(archive, [(later, ["economy"])])
    again = diff(archive, DiffOptions(rules=RULES + quantum, send_latest=2))
    assert [a["article_url"] for a in again.alerts] == [later["url"]] and again.baseline_rules == []


def test_an_article_that_joins_a_watched_section_alerts_once(archive):
    run(archive, [(article(), ["policy"])])
    diff(archive)
    moved = article()
    run(archive, [(moved, ["technology"])])
    assert diff(archive).alerts == []  # not watched
    run(archive, [])
    archive.add_listing(moved["url"], "industry", run_id=None)
    archive.add_listing(moved["url"], "policy", run_id=None)
    joined = diff(archive)
    assert joined.joined == 2
    (alert,) = joined.alerts
    assert alert["kind"] == "joined" and alert["title"] == f"[NPI policy/en] Now in Policy Proposals: {moved['title']}"
    assert alert["tags"] == ["all", "en", "policy", "policy-en"]
    run(archive, [])
    assert diff(archive).alerts == [] and diff(archive).joined == 0


def test_alerts_of_an_alarmed_run_are_held_then_released_once_with_the_clean_title(archive):
    run(archive, [(article(), ["policy"])])
    diff(archive)
    proposal, other = article(), article("ja")
    garbage = {**proposal, "title": "Nakasone Peace Institute", "notes": ["fallback/title_tag"]}
    run(archive, [(garbage, ["policy"]), (other, ["economy"])], stats=BROKEN)
    broken = diff(archive, DiffOptions(alert_changes=True))
    assert broken.layout_problems and broken.held == 1 and [a["kind"] for a in broken.alerts] == ["attention"]
    assert archive.held_count() == 1
    assert archive.held_urls(["fallback/title_tag"]) == [proposal["url"]]  # the crawl fetches it again
    run(archive, [], stats=BROKEN)
    assert diff(archive).alerts == [] and archive.held_count() == 1  # the alarm lasts: still held
    assert diff(archive).alerts == [] and archive.held_count() == 1  # nothing crawled: still held
    run(archive, [(garbage, ["policy"])])  # too few pages to trip the alarm, the page still broken
    assert diff(archive).alerts == [] and archive.held_count() == 1  # still held: no clean version yet
    run(archive, [(proposal, ["policy"])])  # the healthy run re-fetched it: a revision of the garbage
    healed = diff(archive, DiffOptions(alert_changes=True))
    assert healed.released == 1 and healed.changed == 1
    assert [(a["kind"], a["title"]) for a in healed.alerts] == [("new", f"[NPI policy/en] {proposal['title']}")]
    assert archive.held_count() == 0
    run(archive, [])
    assert diff(archive, DiffOptions(alert_changes=True)).alerts == []


def test_an_article_reaches_a_channel_once_whatever_announced_it(archive, tmp_path):
    quantum = rules_from_table({"rule": [{"name": "quantum", "any": ["quantum"]}]}, "f")
    run(archive, [(article(), ["policy"])])
    diff(archive, DiffOptions(rules=quantum))
    x = with_body(article(), "Quantum sensing.")
    run(archive, [(x, ["technology"])])
    assert len(diff(archive, DiffOptions(rules=quantum)).alerts) == 1  # the rule's
    with JsonSink() as sink:
        config = tmp_path / "channels.txt"
        config.write_text(f"quantum, all={sink.url('both')}\nall={sink.url('all')}\n")
        channels = load_channels(config=str(config))
        deliver(archive, channels)
        assert sink.titles("both") == [f"[NPI technology/en] {x['title']}"] and sink.titles("all") == []
        run(archive, [])
        archive.add_listing(x["url"], "policy", run_id=None)  # it joins the watched section
        assert [a["kind"] for a in diff(archive, DiffOptions(rules=quantum)).alerts] == ["joined"]
        result = deliver(archive, channels)
        assert result.pending == 0 and result.sent == 1
        # the channel that had it from the rule does not get it again; the other one does
        assert len(sink.titles("both")) == 1
        assert sink.titles("all") == [f"[NPI policy/en] Now in Policy Proposals: {x['title']}"]


N = 500  # the endpoint's limit, declared by the channel the way Discord's plugin declares 2000


def limited(sink: JsonSink, query: str = "", n: int = N) -> list:
    (channel,) = load_channels([sink.url() + query])
    channel.server.body_maxlen = n
    channel.server.overflow_amalgamate_title = True
    return [channel]


def test_no_alert_fails_for_being_too_long(archive):
    run(archive, [(article(), ["policy"])])
    diff(archive)
    long = with_body(article(title=("A very long title " * 10).strip()), "Economic security. " * 400)
    run(archive, [(long, ["policy"])])
    diff(archive)
    with JsonSink() as sink:
        sink.max_chars = N
        result = deliver(archive, limited(sink))
        assert result.alerts_sent == 1 and sink.refused == 0
        (post,) = sink.posts
    assert len(post["title"]) + len(post["message"]) <= N
    assert post["title"] == f"[NPI policy/en] {long['title']}"
    assert post["message"].startswith("Date: 2026-11-20\nSections: Policy Proposals")
    assert post["message"].endswith(long["url"])


def test_a_user_who_chose_overflow_split_gets_apprise_splitting(archive):
    run(archive, [(article(), ["policy"])])
    diff(archive)
    long = with_body(article(), "Economic security. " * 100)
    run(archive, [(long, ["policy"])])
    diff(archive)
    with JsonSink() as sink:
        sink.max_chars = 200
        assert deliver(archive, limited(sink, "?overflow=split", 200)).alerts_sent == 1
        assert len(sink.posts) > 1 and sink.refused == 0
        whole = "".join(p["message"] for p in sink.posts)
        assert "Sections: Policy Proposals" in whole and whole.rstrip().endswith(long["url"])


def test_a_digest_is_packed_into_messages_that_fit_each_marked_sent(archive):
    run(archive, [(article(), ["policy"])])
    diff(archive)
    news = [article(title=f"Proposal number {i} on the economic security of Japan") for i in range(12)]
    run(archive, [(a, ["policy"]) for a in news])
    diff(archive)
    with JsonSink() as sink:
        sink.max_chars = N
        channels = limited(sink)
        result = deliver(archive, channels, DeliveryOptions(digest=True))
        assert sink.refused == 0 and result.sent == len(sink.posts) > 1 and result.alerts_sent == 12
        assert deliver(archive, channels, DeliveryOptions(digest=True)).sent == 0
    for post in sink.posts:
        assert len(post["title"]) + len(post["message"]) <= N
    shown = [line for post in sink.posts for line in post["message"].splitlines() if line.startswith("https://")]
    assert sorted(shown) == sorted(a["url"] for a in news)
    assert [p["title"] for p in sink.posts][0] == f"[NPI] {len(sink.posts[0]['message'].split(chr(10) * 2))} new items"
    rows = archive.rows("SELECT count(DISTINCT alert_id) AS n, count(*) AS d FROM deliveries WHERE status = 'sent'")
    assert rows == [{"n": 12, "d": 12}]


def test_a_flood_summary_lists_what_fits_and_counts_the_rest(archive):
    run(archive, [(article(), ["policy"])])
    diff(archive)
    run(archive, [(article(), ["policy"]) for _ in range(30)])
    diff(archive, DiffOptions(flood_limit=25))
    with JsonSink() as sink:
        sink.max_chars = N
        assert deliver(archive, limited(sink)).alerts_sent == 1
        (post,) = sink.posts
    assert len(post["title"]) + len(post["message"]) <= N
    assert post["message"].startswith("30 alerts at once")
    assert post["message"].endswith("more (npi-crawler status; table events)")
    listed = post["message"].count("https://")
    more = int(post["message"].rsplit("... and ", 1)[1].split()[0])
    assert 0 < listed < 25 and listed + more == 30


@pytest.mark.parametrize("limits", [Limits(2000, 250, True), Limits(4096, 0), Limits(160, 0)])
def test_every_queued_message_fits_real_limits_after_delivery_fits_it(archive, limits):
    from npi_crawler.monitor.delivery import _message

    run(archive, [(article(), ["policy"])])
    diff(archive, DiffOptions(rules=RULES))
    item = with_body(article(title="半導体 " * 80), "Semiconductors. " * 500)
    run(archive, [(item, ["policy"])])
    (alert,) = diff(archive, DiffOptions(rules=RULES)).alerts

    class Channel:
        server = type("Plugin", (), {"body_maxlen": limits.body, "title_maxlen": limits.title,
                                     "overflow_amalgamate_title": limits.shared})()

    title, body = _message(Channel, [alert])
    assert fits(title, body, limits) and body.endswith(item["url"])


def test_an_upgraded_archive_does_not_announce_old_joins(db_path):
    from npi_crawler.archive import MIGRATIONS
    from npi_crawler.archive.migrations import migrate_archive

    a = article()
    with Archive.connect(db_path) as old:
        migrate_archive(old, MIGRATIONS[:3])  # the version before rules
        run_id = old.start_run(mode="incremental", base_url="https://npi.or.jp/", langs=["en"], sections=[])
        old.store_article(ArticleRecord(**a), run_id=run_id)
        old.add_listing(a["url"], "technology", run_id=run_id)
        old.finish_run(run_id, status="ok", counts={}, stats={"npi/list/pages": 12, "npi/article/pages": 1})
        # what that version's differ recorded: the article as new, in technology (not watched)
        old.conn.execute(
            "INSERT INTO events (at, run_id, kind, article_url, lang, title, sections, alerted) "
            "VALUES ('2026-11-20T00:00:00Z', 1, 'new', ?, 'en', ?, '[\"technology\"]', 0)",
            [a["url"], a["title"]],
        )
        old.conn.execute("UPDATE runs SET diffed_at = '2026-11-20T00:00:00Z', diff_outcome = 'baseline'")
        old.conn.execute("INSERT INTO watch_scopes VALUES ('en', 'policy', '2026-11-20T00:00:00Z', 1)")
        old.add_listing(a["url"], "policy", run_id=None)  # it joined policy then: that version never said
    with Archive.open(db_path) as upgraded:
        rows = upgraded.rows("SELECT kind, section, alerted FROM events WHERE kind = 'joined'")
        assert rows == [{"kind": "joined", "section": "policy", "alerted": 1}]
        run(upgraded, [])
        result = diff(upgraded)
        assert result.alerts == [] and result.joined == 0


def test_a_held_article_whose_page_always_parses_through_a_fallback_is_released_once_the_layout_is_proven(archive):
    run(archive, [(article(), ["policy"])])
    diff(archive)
    odd = {**article(), "notes": ["fallback/title_og"]}
    run(archive, [(odd, ["policy"])], stats=BROKEN)
    assert diff(archive).held == 1
    run(archive, [(article(), ["economy"]) for _ in range(3)])  # three clean pages: the layout is right
    healed = diff(archive)
    assert healed.released == 1 and [a["article_url"] for a in healed.alerts] == [odd["url"]]
