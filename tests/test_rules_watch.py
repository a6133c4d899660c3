"""Watcher rules end to end: the real CLI crawls the replica over HTTP on 127.0.0.1 (PDFs
included), ``rules check`` and ``feed --rule`` agree with an independent count over the replica's
model (tests/site/rules_oracle.py), and ``watch --rules`` delivers through real Apprise to local
JSON endpoints named in an Apprise TEXT config: the issue's acceptance test."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import feedparser
import pytest

from npi_crawler.rules.model import load_rules
from tests.conftest import crawl, run_cli
from tests.endpoints import JsonSink
from tests.site import new_article
from tests.site.rules_oracle import count_matches, matched_articles, rule_matches
from tests.test_rules import ORACLE_RULES

pytestmark = pytest.mark.slow

RULES = """
[[rule]]
name = "chips"
any = ["semiconductor", "半導体"]

[[rule]]
name = "econsec"
any = ["economic security", "経済安全保障"]

[[rule]]
name = "alliance"
any = ["日米同盟"]
langs = ["ja"]
tags = ["ja-team"]
"""


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_rules_check_counts_equal_an_independent_count_of_the_replica(replica, site, db_path, tmp_path):
    crawl(replica, db_path)
    rules_file = write(tmp_path, "rules.toml", ORACLE_RULES)
    rules = load_rules(rules_file)
    checked = run_cli("rules", "check", rules_file, "--db", db_path, "--format", "json", "--latest", "2")
    assert checked.returncode == 0, checked.stderr
    report = json.loads(checked.stdout)
    expected = count_matches(site, rules)
    assert {r["rule"]: r["matches"] for r in report} == expected
    assert sum(1 for n in expected.values() if 0 < n < len(site.live())) >= 6  # not a vacuous agreement
    base = replica.url.rstrip("/")
    for entry in report:
        paths = matched_articles(site, [r for r in rules if r.name == entry["rule"]])[entry["rule"]]
        newest = sorted((site.articles[p].published for p in paths), reverse=True)[:2]
        assert [x["published"] for x in entry["latest"]] == newest
        assert all(x["url"].removeprefix(base) in paths and "[" in x["snippet"] for x in entry["latest"])
    table = run_cli("rules", "check", rules_file, "--db", db_path)
    assert table.returncode == 0 and re.search(rf"^chips +{expected['chips']} article\(s\)", table.stdout, re.M)


def test_feed_rule_is_the_rules_matches_as_atom(replica, site, db_path, tmp_path):
    crawl(replica, db_path)
    # words only the PDFs of three articles hold (the replica's PDFs end "pdfonlyterm<n>")
    terms = sorted({t.split()[-1] for a in site.live() for t in a.pdf_texts.values() if "pdfonlyterm" in t})[:3]
    assert len(terms) == 3
    rules_file = write(tmp_path, "rules.toml", ORACLE_RULES + f'\n[[rule]]\nname = "pdfs"\nany = {json.dumps(terms)}\n')
    result = run_cli("feed", "--rule", "PDFs", "--rules", rules_file, "--db", db_path)
    assert result.returncode == 0, result.stderr
    feed = feedparser.parse(result.stdout)
    (rule,) = [r for r in load_rules(rules_file) if r.name == "pdfs"]
    base = replica.url.rstrip("/")
    assert sorted(e.id for e in feed.entries) == sorted(base + p for p in matched_articles(site, [rule])["pdfs"])
    assert feed.entries and all(e.summary.startswith("Match in PDF ") for e in feed.entries)
    unknown = run_cli("feed", "--rule", "nope", "--rules", rules_file, "--db", db_path)
    assert unknown.returncode == 2 and "no rule named 'nope'; the rules are chips," in unknown.stderr


def test_bad_rules_are_one_line_exit_2_before_any_crawl(replica, db_path, tmp_path):
    bad = write(tmp_path, "rules.toml", '[[rule]]\nname = "chips"\nany = ["x"]\ntag = ["chips"]\n')
    for args in (["watch", "--base-url", replica.url, "--rules", bad], ["rules", "check", bad]):
        result = run_cli(*args, "--db", db_path)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert "rule 'chips': unknown key 'tag'" in result.stderr
    settings = write(tmp_path, "npi-crawler.toml", '[[rule]]\nname = "a"\nsections = ["policy"]\n')
    result = run_cli("--settings", settings, "watch", "--db", db_path, "--base-url", replica.url)
    assert result.returncode == 2 and "rule 'a': no terms" in result.stderr
    assert replica.log == [] and not Path(db_path).exists()


def publish(site, n: int, lang: str, sections: list[str], title: str, text: str, pdf_text: str | None = None):
    """A newly published article whose words are chosen by the test (a PDF only when given)."""
    article = new_article(site, lang=lang, sections=sections, n=n)
    article.title, article.title_html, article.blocks = title, None, [("p", text)]
    prefix = "/en" if lang == "en" else ""
    article.pdfs = [f"{prefix}/research/data/{n:040x}.pdf"] if pdf_text else []
    article.pdf_texts = {article.pdfs[0]: pdf_text} if pdf_text else {}
    return article


def test_watch_rules_each_channel_gets_one_message_per_matching_new_article(replica, site, db_path, tmp_path):
    rules_file = write(tmp_path, "rules.toml", RULES)
    with JsonSink() as sink:
        config = write(
            tmp_path,
            "channels.txt",
            f"chips={sink.url('chips')}\neconsec, ja-team={sink.url('mixed')}\nall={sink.url('all')}\n",
        )

        def watch():
            result = run_cli("watch", "--db", db_path, "--base-url", replica.url, "--rules", rules_file, "--config", config)
            assert result.returncode == 0, result.stdout + result.stderr
            return result

        baseline = watch()
        assert sink.posts == [] and "baseline of new rule(s) chips, econsec, alliance" in baseline.stdout
        new = {
            "chips-title": publish(site, 1, "en", ["technology"], "Export controls on semiconductors", "Trade measures."),
            "chips+econ": publish(site, 2, "ja", ["economy"], "供給網の課題", "半導体と経済安全保障の関係を検討した。"),
            "chips-pdf": publish(
                site, 3, "en", ["diplomacy"], "A regional outlook", "Diplomatic relations.",
                pdf_text="The annex covers semiconductor supply in detail.",
            ),
            "econ+policy": publish(site, 4, "en", ["policy"], "Proposals for a new era", "On economic security."),
            "alliance+policy": publish(site, 5, "ja", ["policy"], "提言", "日米同盟の強化について検討した。"),
            "nothing": publish(site, 6, "en", ["government"], "Constitutional debate", "Parliamentary procedure."),
            "policy": publish(site, 7, "ja", ["policy", "industry"], "産業政策の提言", "産業の将来を検討した。"),
            "alliance-en": publish(site, 8, "en", ["economy"], "Alliance management", "The 日米同盟 in English."),
        }
        watch()
        base = replica.url.rstrip("/")
        received = {path: Counter(p["message"].splitlines()[-1] for p in sink.posts if p["path"] == f"/{path}")
                    for path in ("chips", "mixed", "all")}
        assert all(set(counts.values()) == {1} for counts in received.values() if counts)  # once each

        def urls(*keys):
            return {base + new[k].path for k in keys}

        assert set(received["chips"]) == urls("chips-title", "chips+econ", "chips-pdf")
        assert set(received["mixed"]) == urls("chips+econ", "econ+policy", "alliance+policy")
        assert set(received["all"]) == urls("econ+policy", "alliance+policy", "policy")
        # the same sets from the independent matcher over the model
        rules = {r.name: r for r in load_rules(rules_file)}
        for path, tags in (("chips", {"chips"}), ("mixed", {"econsec", "ja-team"})):
            expected = {base + a.path for a in new.values() if any(rule_matches(r, a) for r in rules.values() if tags & set(r.tags))}
            assert set(received[path]) == expected
        by_url = {(p["path"], p["message"].splitlines()[-1]): p for p in sink.posts}
        both = by_url[("/mixed", base + new["chips+econ"].path)]["message"]
        # the match is in the excerpt the alert shows, so no snippet repeats it
        assert "\nRules: chips, econsec\n\n半導体と経済安全保障の関係を検討した。\n" in both and "Match in" not in both
        pdf = by_url[("/chips", base + new["chips-pdf"].path)]["message"]
        assert f"Match in PDF {base}{new['chips-pdf'].pdfs[0]}: The annex covers [semiconductor] supply" in pdf
        count = len(sink.posts)
        watch()
        assert len(sink.posts) == count == 9
