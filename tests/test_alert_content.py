"""Alerts that carry the next step (issue 21, points 3 and 4) and the outbox's facts as data (issue
18): what a new article's alert says (authors, PDFs, a short excerpt, a rule's snippet only when it
adds), what an edit's and a removal's alert say, the one diff that ``history`` shows too, the flood
summary stored as data, and "once per article and channel" kept by one unique index.

Library functions over real archive files and real Apprise to a local endpoint; the acceptance
tests at the end run the real CLI over HTTP against the replica, changed through its control
endpoint (tests/site/control.py)."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npi_crawler.archive import Archive
from npi_crawler.monitor.changes import Text, compare, inline, sentence_diff, sentences
from npi_crawler.monitor.differ import DiffOptions, diff
from npi_crawler.monitor.messages import EXCERPT_CHARS, excerpt
from npi_crawler.monitor.messages_fit import Limits, fit, fits
from npi_crawler.rules.model import rules_from_table
from tests.conftest import run_cli
from tests.endpoints import JsonSink
from tests.site.control import send
from tests.test_monitor import article, run

JA_BODY = (
    "\u3000中曽根平和研究所は、重要鉱物のサプライチェーン強靭化に向けた政策提言を公表した。"
    "本提言は、経済安全保障の観点から、日本が取るべき施策を五つの柱に整理したものである。"
    "第一に、供給源の多角化を進めるべきである。\n\n"
    "\u3000第二に、備蓄制度を拡充し、価格高騰時の放出基準を明確にすべきである。"
)
EN_BODY = (
    "NPI published policy recommendations on economic security, drafted by its study group over two years. "
    "They argue that Japan must secure critical minerals, semiconductors and energy for the coming decade, "
    "and that it cannot do so alone. The first recommendation is a standing council of ministers.\n\n"
    "The second is a fund for stockpiles of rare earths."
)
PDFS = [
    "https://npi.or.jp/research/data/" + "a" * 40 + ".pdf",
    "https://npi.or.jp/research/data/" + "b" * 40 + ".pdf",
]


def baseline(archive: Archive, **options) -> None:
    run(archive, [(article(), ["policy"])])
    diff(archive, DiffOptions(**options))


# -- the excerpt ------------------------------------------------------------------------------------


def test_the_excerpt_is_about_120_japanese_or_250_english_characters_cut_at_a_sentence():
    ja, en = excerpt(JA_BODY, "ja"), excerpt(EN_BODY, "en")
    assert ja == (
        "中曽根平和研究所は、重要鉱物のサプライチェーン強靭化に向けた政策提言を公表した。"
        "本提言は、経済安全保障の観点から、日本が取るべき施策を五つの柱に整理したものである。"
        "第一に、供給源の多角化を進めるべきである。"  # 103 characters: the next sentence would pass 120
    )
    assert len(ja) <= EXCERPT_CHARS["ja"] and len(en) <= EXCERPT_CHARS["en"]
    assert en.endswith("and that it cannot do so alone.") and len(en) > 200


def test_without_a_sentence_end_in_reach_the_excerpt_is_cut_at_a_word():
    en = excerpt("word " * 50 + "semiconductors " * 40, "en")
    assert (
        en.endswith("…")
        and len(en) <= EXCERPT_CHARS["en"]
        and en[:-1].split()[-1] in ("word", "semiconductors")
    )
    ja = excerpt("経済安全保障をめぐる" + "半導体と人工知能と量子技術と" * 12 + "課題を検討した。", "ja")
    assert ja.endswith("と…") and len(ja) <= EXCERPT_CHARS["ja"]  # after a particle, before the next word


# -- what a new article's alert says ----------------------------------------------------------------


def test_a_new_alert_names_its_authors_and_links_each_pdf(archive):
    baseline(archive)
    item = {
        **article("ja", title="「重要鉱物」に関する政策提言"),
        "body": JA_BODY,
        "authors": [("伊藤 誠", "https://npi.or.jp/experts/ito.html"), ("山田 花子", None)],
        "pdfs": PDFS,
    }
    run(archive, [(item, ["policy"])])
    (alert,) = diff(archive).alerts
    assert alert["body"] == "\n".join(
        [
            "Date: 2026-11-20",
            "Authors: 伊藤 誠, 山田 花子",
            "Sections: 政策提言",
            "",
            excerpt(JA_BODY, "ja"),
            "",
            f"PDF: {PDFS[0]}",
            f"PDF: {PDFS[1]}",
            "",
            item["url"],
        ]
    )


RULES = rules_from_table({"rule": [{"name": "chips", "any": ["semiconductor", "半導体"]}]}, "rules.toml")


@pytest.mark.parametrize(
    "where, body, pdf_text, shown",
    [
        ("excerpt", "Semiconductors matter. " + "Filler sentence. " * 40, None, None),
        ("body", "Filler sentence. " * 40 + "Semiconductors matter.", None, "Match in body: "),
        ("pdf", "Nothing here.", "A PDF on semiconductors.", "Match in PDF "),
        ("title", "Nothing here.", None, None),
    ],
)
def test_a_rules_snippet_only_when_it_adds_to_the_excerpt(archive, where, body, pdf_text, shown):
    baseline(archive, rules=RULES)
    item = {**article(title="On semiconductors" if where == "title" else "A report"), "body": body}
    if pdf_text:
        item["pdfs"] = [PDFS[0]]
    run_id = run(archive, [(item, ["economy"])])
    if pdf_text:
        archive.store_pdf(PDFS[0], status="ok", run_id=run_id, text=pdf_text, size=1)
    (alert,) = diff(archive, DiffOptions(rules=RULES)).alerts
    assert "\nRules: chips\n" in alert["body"]
    if shown:
        assert shown in alert["body"] and "[semiconductors]" in alert["body"].lower()
    else:
        assert "Match in" not in alert["body"]


@pytest.mark.parametrize(
    "limits",
    [Limits(2000, 250, True), Limits(4096, 0), Limits(500, 250, True), Limits(300, 0), Limits(160, 0)],
)
def test_fitted_the_article_url_stays_last_and_no_link_is_cut(limits):
    title = "[NPI policy/ja] 「重要鉱物」に関する政策提言"
    body = "\n".join(
        [
            "Date: 2026-11-20",
            "Authors: 伊藤 誠",
            "Sections: 政策提言",
            "",
            "本文。" * 200,
            "",
            *(f"PDF: {u}" for u in PDFS),
        ]
        + ["", "https://npi.or.jp/research/2026/11/20100000.html"]
    )
    new_title, fitted = fit(title, body, limits)
    lines = fitted.split("\n")
    assert fits(new_title, fitted, limits) and lines[-1] == "https://npi.or.jp/research/2026/11/20100000.html"
    assert all(line in body.split("\n") for line in lines if "://" in line)  # whole, or not there
    if limits.body >= 500:
        assert "Authors: 伊藤 誠" in lines and f"PDF: {PDFS[0]}" in lines


link_lines = st.sampled_from(
    [f"PDF: {PDFS[0]}", f"PDF: {PDFS[1]}", "History: npi-crawler history https://npi.or.jp/research/2026/11/1.html"]
)
text_lines = st.text(alphabet=st.sampled_from("ab 半導体🚀,.:"), max_size=300)


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(st.one_of(link_lines, text_lines), max_size=12),
    body=st.integers(1, 3000),
    title_max=st.sampled_from([0, 250]),
    shared=st.booleans(),
)
def test_fit_never_cuts_a_link_and_keeps_the_articles_url_longest(lines, body, title_max, shared):
    url = "https://npi.or.jp/research/2026/11/20100000.html"
    limits = Limits(body=body, title=title_max, shared=shared)
    title, fitted = fit("[NPI policy/ja] 「重要鉱物」に関する政策提言", "\n".join([*lines, "", url]), limits)
    assert fits(title, fitted, limits)
    out = fitted.split("\n")
    if body >= len(url):  # below that, the last resort cuts even the URL
        assert all(line in lines or line == url for line in out if "://" in line)  # whole, or not there
        assert out[-1] == url  # the last link to go


# -- the diff ---------------------------------------------------------------------------------------


def test_japanese_is_split_on_the_sentence_marks_and_compared_by_characters():
    assert sentences("「重要だ。」と述べた。本当か？はい！\n\n次の段落") == [
        "「重要だ。」と述べた。",
        "本当か？",
        "はい！",
        "次の段落",
    ]
    assert (
        inline("半導体と人工知能の課題", "半導体と量子技術の課題") == "半導体と[-人工知能-]{+量子技術+}の課題"
    )


def test_english_is_split_on_sentence_ends_and_compared_by_words():
    assert sentences("The U.S. Navy agrees. Report No. 5 is out! Next.") == [
        "The U.S. Navy agrees.",
        "Report No. 5 is out!",
        "Next.",
    ]
    assert inline("It examines energy, China.", "It examines energy security, China.") == (
        "It examines energy{+ security+}, China."
    )


def test_sentences_added_removed_and_edited_in_the_order_they_read():
    old = ["First.", "Second sentence is here.", "Third.", "Fourth one stays."]
    new = ["First.", "Second sentence is there.", "Fourth one stays.", "Fifth."]
    assert sentence_diff(old, new) == [
        ("~", "Second sentence is [-here-]{+there+}."),
        ("-", "Third."),
        ("+", "Fifth."),
    ]


def test_the_diff_names_every_field_that_changed():
    old = Text("Old title", "2026-01-01", "A.\n\nB.", [PDFS[0]], ["A. Author"])
    new = Text("New title", "2026-01-02", "A.\n\nB.\n\nC.", [PDFS[1]], ["A. Author", "B. Author"])
    assert compare(old, new).lines() == [
        "Title was: Old title",
        "Date was: 2026-01-01 (now 2026-01-02)",
        "Authors were: A. Author (now A. Author, B. Author)",
        f"PDF added: {PDFS[1]}",
        f"PDF removed: {PDFS[0]}",
        "+ C.",
    ]
    assert not compare(old, old) and compare(old, old).lines() == []


# -- what an edit's and a removal's alert say -------------------------------------------------------


def test_an_edit_alert_says_what_changed_and_names_the_commands(archive):
    a = {**article(), "body": EN_BODY, "pdfs": [PDFS[0]]}
    run(archive, [(a, ["policy"])])
    diff(archive)
    edited = {
        **a,
        "title": "A corrected title",
        "body": EN_BODY + "\n\nAn added closing paragraph.",
        "pdfs": PDFS,
    }
    run(archive, [(edited, ["policy"])])
    (alert,) = diff(archive, DiffOptions(alert_changes=True)).alerts
    assert alert["title"] == "[NPI policy/en] Updated: A corrected title"
    body = alert["body"].split("\n")
    assert body[3:7] == [
        f"Title was: {a['title']}",
        f"PDF added: {PDFS[1]}",
        "+ An added closing paragraph.",
        "",
    ]
    assert f"History: npi-crawler history {a['url']} --db {archive.path}" in body and body[-1] == a["url"]
    # no WARC record (the pages were stored directly): no snapshot command to give
    assert not any(line.startswith("Before the edit:") for line in body)


def test_an_edit_alert_is_fitted_with_the_history_command_kept(archive):
    a = {**article(), "body": "Short."}
    run(archive, [(a, ["policy"])])
    diff(archive)
    added = "\n\n".join(
        f"A long added paragraph number {i} about the supply of critical minerals." for i in range(30)
    )
    run(archive, [({**a, "body": "Short.\n\n" + added}, ["policy"])])
    (alert,) = diff(archive, DiffOptions(alert_changes=True)).alerts
    limits = Limits(600, 250, True)
    title, body = fit(alert["title"], alert["body"], limits)
    assert fits(title, body, limits) and body.endswith(a["url"])
    assert (
        "+ A long added paragraph number 0 about" in body
        and f"History: npi-crawler history {a['url']}" in body
    )


# -- end to end: the real CLI, the replica over HTTP, real Apprise ----------------------------------


def watch(replica, db_path, sink, *extra):
    result = run_cli("watch", "--db", db_path, "--base-url", replica.url, "--notify", sink.url(), *extra)
    assert result.returncode in (0, 3), result.stdout + result.stderr
    return result


def command_of(body: str, label: str) -> list[str]:
    """The npi-crawler command an alert names on its ``label:`` line, as argv without the program."""
    (line,) = [line for line in body.split("\n") if line.startswith(label + ": npi-crawler ")]
    return shlex.split(line.split(": ", 1)[1])[1:]


@pytest.mark.slow
def test_new_proposals_name_every_author_and_link_every_pdf(replica, site, db_path):
    with JsonSink() as sink:
        watch(replica, db_path, sink)
        published = [
            send(replica.url, "publish", {"lang": lang, "section": "policy", "pdfs": 2})
            for lang in ("ja", "en")
        ]
        with replica.lock:
            site.articles[published[0]["url"].removeprefix(replica.url.rstrip("/"))].authors = [
                ("伊藤 誠", "/experts/ito.html"),
                ("山田 花子", "/experts/yamada.html"),
            ]
        watch(replica, db_path, sink)
    assert len(sink.posts) == 2
    base = replica.url.rstrip("/")
    for post in sink.posts:
        url = post["message"].split("\n")[-1]
        proposal = site.articles[url.removeprefix(base)]
        lines = post["message"].split("\n")
        if proposal.authors:
            assert f"Authors: {', '.join(name for name, _ in proposal.authors)}" in lines
        assert [line for line in lines if line.startswith("PDF: ")] == [
            f"PDF: {base}{p}" for p in proposal.pdfs
        ]
        assert len(excerpt(proposal.expected_body(), proposal.lang)) <= EXCERPT_CHARS[proposal.lang]
    assert any(p["message"].count("Authors: 伊藤 誠, 山田 花子") for p in sink.posts)


def changed_on_replica(replica, site, db_path, lang: str, operation: str, fields: dict, *options: str):
    """A baseline, then ``operation`` (edit, remove) on the first policy article in ``lang``
    through the replica's control endpoint, then ``watch --full`` with ``options`` twice (the
    second has nothing new): (that article, its URL, what the channel received)."""
    with JsonSink() as sink:
        watch(replica, db_path, sink)
        target = sorted((a for a in site.live() if "policy" in a.sections and a.lang == lang), key=lambda a: a.path)[0]
        url = replica.url.rstrip("/") + target.path
        send(replica.url, operation, {"url": url, **fields})
        for _ in range(2):
            watch(replica, db_path, sink, "--full", *options)
    return target, url, sink.posts


@pytest.mark.slow
def test_watch_full_changes_after_an_appended_paragraph_sends_one_alert_quoting_it(replica, site, db_path):
    """The issue's acceptance test: one alert, quoting the added text; its commands show the rest."""
    added = "The institute added this closing paragraph after publication."
    target, url, (post,) = changed_on_replica(replica, site, db_path, "en", "edit", {"append": added}, "--changes")
    assert post["title"] == f"[NPI policy/en] Updated: {' '.join(target.title.split())}"
    body = post["message"]
    assert f"\n+ {added}\n" in body and body.endswith("\n" + url)
    history = run_cli(*command_of(body, "History"))
    assert history.returncode == 0 and f"\n+ {added}\n" in history.stdout  # the same diff
    before = run_cli(*command_of(body, "Before the edit"), "--format", "text")
    assert before.returncode == 0, before.stderr
    assert added not in before.stdout and " ".join(target.expected_body().split()[:4]) in before.stdout


@pytest.mark.slow
def test_watch_full_removals_names_the_last_version_and_the_snapshot_that_shows_it(replica, site, db_path):
    target, url, (post,) = changed_on_replica(replica, site, db_path, "ja", "remove", {}, "--removals")
    assert post["title"] == f"[NPI policy/ja] Removed: {' '.join(target.title.split())}"
    assert "Removed: its page answered HTTP 404 at " in post["message"]
    (last,) = [line for line in post["message"].split("\n") if line.startswith("Last version: stored ")]
    snapshot = command_of(post["message"], "As served")
    assert snapshot[snapshot.index("--at") + 1] == last.split(", last served ")[1]
    shown = run_cli(*snapshot)
    assert shown.returncode == 0 and target.title in shown.stdout  # the page as it was served, byte for byte
