"""Watcher rules: the file format and its validation (rules/model.py), the matching engine
(rules/matching.py) on hand-written cases, and the engine against an independent count on the
replica's model (tests/site/rules_oracle.py)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from npi_crawler.monitor.channels import load_channels
from npi_crawler.rules.matching import Document, MatchIndex, match_rules, snippet
from npi_crawler.rules.model import Rule, RulesError, load_rules, rules_from_table
from npi_crawler.site.text import fold, word_view
from tests.site import generate_site, new_article
from tests.site.model import BROKEN_PDF, Site
from tests.site.rules_oracle import contains as oracle_contains
from tests.site.rules_oracle import fold as oracle_fold
from tests.site.rules_oracle import matched_articles

ROOT = Path(__file__).resolve().parent.parent

GOOD = """
[[rule]]
name = "chips"
any = ["semiconductor", "半導体"]
tags = ["chips", "Tech"]

[[rule]]
name = "taiwan-no-events"
any = "Taiwan"
none = ["event notice", "イベント"]
sections = ["diplomacy", "policy"]
langs = ["en"]
"""


def write(tmp_path: Path, text: str, name: str = "rules.toml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


# -- the file format ------------------------------------------------------------------------------


def test_a_rules_file_loads_into_frozen_rules_with_defaults(tmp_path):
    chips, taiwan = load_rules(write(tmp_path, GOOD))
    assert chips == Rule(name="chips", any=("semiconductor", "半導体"), tags=("chips", "tech"))
    assert taiwan.any == ("Taiwan",)  # a lone string is a list of one
    assert taiwan.none == ("event notice", "イベント")
    assert taiwan.tags == ("taiwan-no-events",)  # no tags: the name is the tag
    assert (taiwan.sections, taiwan.langs) == (("diplomacy", "policy"), ("en",))
    assert (chips.sections, chips.langs) == ((), ())  # every section, both languages
    with pytest.raises(dataclasses.FrozenInstanceError):
        chips.name = "x"  # type: ignore[misc]


def test_rules_from_a_settings_file_table_ignore_the_other_keys():
    table = {"db": "npi.db", "rule": [{"name": "ai", "all": ["AI", "人工知能"], "langs": "ja"}]}
    (rule,) = rules_from_table(table, "npi-crawler.toml")
    assert (rule.all, rule.langs, rule.positive) == (("AI", "人工知能"), ("ja",), ("AI", "人工知能"))
    assert rules_from_table({"db": "npi.db"}, "npi-crawler.toml") == ()


def test_terms_are_nfkc_and_spaces_folded():
    (rule,) = rules_from_table({"rule": [{"name": "a", "any": ["  ＡＩ ", "economic\n  security"]}]}, "f")
    assert rule.any == ("AI", "economic security")


BAD = [
    ('[[rule]]\nname = "a"\n', ["rule 'a'", "no terms", "any = [...]"]),
    ('[[rule]]\nname = "a"\nany = []\nnone = ["x"]\n', ["rule 'a'", "no terms"]),
    ('[[rule]]\nname = "a"\nany = ["x"]\ntag = ["x"]\n', ["rule 'a'", "unknown key 'tag'", "tags"]),
    (
        '[[rule]]\nname = "a"\nany = ["x"]\nsections = ["chips"]\n',
        ["rule 'a'", "'sections'", "'chips'", "policy"],
    ),
    ('[[rule]]\nname = "a"\nany = ["x"]\nlangs = ["fr"]\n', ["rule 'a'", "'langs'", "'fr'", "ja, en"]),
    ('[[rule]]\nname = ""\nany = ["x"]\n', ["rule #1", "'name' is empty"]),
    ('[[rule]]\nany = ["x"]\n', ["rule #1", "no 'name'"]),
    ('[[rule]]\nname = 3\nany = ["x"]\n', ["rule #1", "'name' must be a string"]),
    (
        '[[rule]]\nname = "a"\nany = ["x"]\n[[rule]]\nname = "A"\nany = ["y"]\n',
        ["rule 'A' (#2)", "already used by rule #1"],
    ),
    ('[[rule]]\nname = "a"\nany = 3\n', ["rule 'a'", "'any' must be a list of strings, not a number"]),
    ('[[rule]]\nname = "a"\nany = ["x", 3]\n', ["rule 'a'", "'any'", "3 is a number"]),
    ('[[rule]]\nname = "a"\nany = ["x"]\ntags = []\n', ["rule 'a'", "'tags' is empty"]),
    ('[[rule]]\nname = "a"\nany = ["x"]\ntags = ["a b"]\n', ["rule 'a'", "'a b' is not an Apprise tag"]),
    ('[[rule]]\nname = "半導体"\nany = ["x"]\n', ["rule '半導体'", "not an Apprise tag", "add tags"]),
    ('[[rule]]\nname = "a"\nany = ["  "]\n', ["rule 'a'", "empty term"]),
    ('[[rule]]\nname = "a"\nany = ["!!"]\n', ["rule 'a'", "no letter or digit"]),
    ('[[rule]]\nname = "a"\nall = ["x"]\nnone = ["X"]\n', ["rule 'a'", "'x' is both wanted and in 'none'"]),
    ('[rule]\nname = "a"\nany = ["x"]\n', ["[[rule]]", "not [rule]"]),
    ('[[rules]]\nname = "a"\n', ["unknown key 'rules'", "only [[rule]]"]),
    ("", ["no [[rule]]"]),
    ('[[rule]]\nname = "a\n', ["not valid TOML"]),
    ("rule = [1]\n", ["rule #1 must be a table"]),
]


@pytest.mark.parametrize("text, fragments", BAD, ids=[f[1][-1][:30] for f in BAD])
def test_a_bad_rule_is_one_line_naming_file_rule_and_key(tmp_path, text, fragments):
    path = write(tmp_path, text)
    with pytest.raises(RulesError) as err:
        load_rules(path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(path)
    for fragment in fragments:
        assert fragment in message


def test_an_unreadable_rules_file_is_one_line(tmp_path):
    for path, fragment in (
        (str(tmp_path / "missing.toml"), "does not exist"),
        (str(tmp_path), "is a directory"),
    ):
        with pytest.raises(RulesError, match=fragment):
            load_rules(path)
    (tmp_path / "bad.toml").write_bytes(b'[[rule]]\nname = "\xff"\n')
    with pytest.raises(RulesError, match="not UTF-8|not valid TOML"):
        load_rules(str(tmp_path / "bad.toml"))


# -- matching semantics ---------------------------------------------------------------------------


def doc(title: str = "", body: str = "", pdfs=(), url: str = "u", lang: str = "en", sections=("policy",)):
    return Document(url, lang, tuple(sections), title, body, tuple(pdfs))


def matched(term: str, text: str) -> bool:
    return bool(match_rules([doc(body=text)], [Rule("r", any=(term,))]))


TERM_CASES = [
    ("semiconductor", "Semiconductors matter.", True),
    ("semiconductor", "the semiconductor's supply", True),
    ("semiconductors", "one semiconductor", True),
    ("semiconductor", "semiconducting materials", False),
    ("economic security", "Japan's Economic Security in the New Era", True),
    ("economic security", "economic, security", True),  # punctuation between is no boundary
    ("economic security", "security economic", False),
    ("economic security", "economic and security", False),
    ("AI", "Taiwan and China", False),
    ("AI", "生成AIの利用", True),
    ("AI", "ＡＩの利用", True),  # full-width letters are folded by NFKC
    ("regime", "the sanctions régime", True),  # diacritics removed
    ("Japan-US", "the Japan US alliance", True),
    ("半導体", "次世代半導体産業", True),
    ("半導体", "半導 体の供給", True),  # a PDF line break inside a word
    ("半導体", "半導", False),
    ("憲法", "日本国憲法の改正", True),  # two characters: substring too
    ("ai半導体", "AI 半導体の需要", True),
    ("ｻﾌﾟﾗｲﾁｪｰﾝ", "サプライチェーン強靱化", True),  # half-width katakana
    ("NOT", "this is NOT an operator", True),  # FTS5 syntax is searched as words
    ('"quoted"', 'a "quoted" word', True),
    ("C++", "C and C++ code", True),
]


@pytest.mark.parametrize("term, text, expected", TERM_CASES)
def test_what_a_term_matches(term, text, expected):
    assert matched(term, text) is expected


@pytest.mark.parametrize("term, text, expected", TERM_CASES)
def test_the_oracle_implements_the_same_semantics(term, text, expected):
    assert oracle_contains(oracle_fold(text), term) is expected


def test_all_none_sections_and_langs():
    docs = [
        doc(url="en-policy", body="Taiwan and semiconductors", sections=("policy",)),
        doc(url="en-diplo", body="Taiwan. An event notice.", sections=("diplomacy",)),
        doc(url="ja-policy", lang="ja", body="台湾と半導体", sections=("policy", "industry")),
    ]
    rules = [
        Rule("taiwan", any=("Taiwan", "台湾"), none=("event notice",)),
        Rule("both", all=("Taiwan", "semiconductor")),
        Rule("ja-only", any=("半導体", "semiconductor"), langs=("ja",)),
        Rule("industry", any=("Taiwan", "台湾"), sections=("industry",)),
        Rule("nothing", any=("quantum",)),
    ]
    result = match_rules(docs, rules)
    by_rule = {r.name: sorted(u for u, ms in result.items() if r.name in {m.rule for m in ms}) for r in rules}
    assert by_rule == {
        "taiwan": ["en-policy", "ja-policy"],
        "both": ["en-policy"],
        "ja-only": ["ja-policy"],
        "industry": ["ja-policy"],
        "nothing": [],
    }
    assert [m.rule for m in result["ja-policy"]] == ["taiwan", "ja-only", "industry"]  # rule order


def test_the_first_match_says_where_and_shows_a_snippet():
    article = doc(
        title="Annual report",
        body="Nothing here. " * 20
        + "The supply of advanced semiconductors to Japan is a question of economic security.",
        pdfs=[("https://npi.or.jp/a.pdf", "半導体"), ("https://npi.or.jp/b.pdf", "quantum semiconductor")],
    )
    rules = [
        Rule("chips", any=("半導体", "semiconductor")),
        Rule("quantum", any=("quantum",)),
        Rule("report", any=("semiconductor", "report")),
    ]
    chips, quantum, report = match_rules([article], rules)["u"]
    assert (chips.where, chips.pdf_url, chips.term) == ("body", None, "semiconductor")
    assert "[semiconductors] to Japan" in chips.snippet and chips.snippet.startswith("…")
    assert len(chips.snippet) < 2 * 60 + 30
    assert (quantum.where, quantum.pdf_url, quantum.snippet) == (
        "pdf",
        "https://npi.or.jp/b.pdf",
        "[quantum] semiconductor",
    )
    assert (report.where, report.term, report.snippet) == ("title", "report", "Annual [report]")


def test_a_match_only_in_a_pdf_is_found_and_a_broken_batch_is_empty():
    article = doc(body="Nothing relevant.", pdfs=[("p.pdf", "… 経済安全 保障の …")])
    (m,) = match_rules([article], [Rule("es", any=("経済安全保障",))])["u"]
    assert (m.where, m.pdf_url, m.snippet) == ("pdf", "p.pdf", "...[経済安全保障]の...")  # NFKC: … is ...
    assert match_rules([], [Rule("es", any=("x",))]) == {}
    assert match_rules([article], []) == {}


def test_the_index_serves_counts_and_snippets_for_many_rule_sets():
    docs = [doc(url=f"u{i}", body=f"report {i} on {'China' if i % 3 else 'Korea'}") for i in range(30)]
    with MatchIndex(docs) as index:
        assert len(index.matching_docs(Rule("c", any=("china",)))) == 20
        assert len(index.matching_docs(Rule("k", any=("korea",)))) == 10
        first = index.first_match(Rule("k", any=("korea",)), 0)
        assert first.snippet == "report 0 on [Korea]"


def test_snippet_marks_the_match_and_cuts_at_words():
    text = " ".join(f"word{i}" for i in range(40))
    start = text.index("word20")
    s = snippet(text, start, start + 6, width=30)
    assert "[word20]" in s and s.startswith("…word") and s.endswith("…")
    assert snippet("abc", 0, 3) == "[abc]"


@given(st.text(alphabet=st.sampled_from("aZ 　\n\tＡ半導体ｶﾀカナé,。"), max_size=60))
def test_fold_is_idempotent_and_the_word_view_keeps_offsets(text):
    folded = fold(text)
    assert fold(folded) == folded
    assert "  " not in folded and folded == folded.strip()
    view = word_view(folded)
    assert len(view) == len(folded)
    assert all(a == b for a, b in zip(view, folded, strict=True) if b.isascii())


# -- the engine against the independent count ----------------------------------------------------


def site_documents(site: Site, base_url: str = "https://npi.or.jp") -> list[Document]:
    """The batch a crawl of ``site`` would give the engine, built from the model directly."""
    return [
        Document(
            url=base_url + a.path,
            lang=a.lang,
            sections=tuple(a.sections),
            title=" ".join(a.title.split()),
            body=a.expected_body(),
            pdfs=tuple((base_url + p, t) for p, t in a.pdf_texts.items() if t != BROKEN_PDF),
        )
        for a in site.live()
    ]


ORACLE_RULES = """
[[rule]]
name = "chips"
any = ["semiconductor", "半導体"]

[[rule]]
name = "econsec-phrase"
any = ["economic security", "経済安全保障"]

[[rule]]
name = "supply-not-energy"
any = ["supply chain", "サプライチェーン"]
none = ["energy", "エネルギー"]

[[rule]]
name = "alliance-en-diplomacy"
any = ["Japan-US alliance", "日米同盟"]
langs = ["en"]
sections = ["diplomacy", "policy"]

[[rule]]
name = "both-ja"
all = ["中国", "台湾海峡"]

[[rule]]
name = "pdf-only"
any = ["pdfonlyterm7", "pdfonlyterm1001", "pdfonlyterm1002"]

[[rule]]
name = "report-not-ja"
any = ["report"]
none = ["研究会"]

[[rule]]
name = "short-ja"
any = ["財政", "宇宙"]
sections = ["economy", "technology"]
"""


def test_the_engine_agrees_with_the_independent_count_on_a_generated_site(tmp_path):
    site = generate_site(seed=11, n_articles=120)
    for n in (1, 2):  # newly published articles, both languages
        new_article(site, lang="en" if n == 1 else "ja", sections=["policy", "industry"], n=n)
    rules = load_rules(write(tmp_path, ORACLE_RULES))
    expected = matched_articles(site, rules)
    result = match_rules(site_documents(site), rules)
    got = {
        r.name: sorted(
            u.removeprefix("https://npi.or.jp") for u, ms in result.items() if r.name in {m.rule for m in ms}
        )
        for r in rules
    }
    assert got == expected
    # Not a vacuous agreement: every rule matches something and misses something.
    total = len(site.live())
    for name, paths in expected.items():
        assert 0 < len(paths) < total, name
    assert any(m.where == "pdf" for ms in result.values() for m in ms if m.rule == "pdf-only")


# -- docs/alerts.md#rules: its examples and its table of what a term matches ------------------------


def rules_doc() -> str:
    text = (ROOT / "docs" / "alerts.md").read_text(encoding="utf-8")
    return text[text.index("## Rules") :]


def test_the_docs_rules_file_loads_and_its_channels_carry_the_rules_tags(tmp_path):
    (block,) = re.findall(r"```toml\n(.*?)```", rules_doc(), re.S)
    rules = load_rules(write(tmp_path, block))
    assert [r.name for r in rules] == ["chips", "taiwan", "econsec-en", "alliance-ja"]
    assert rules[1].tags == ("taiwan",) and rules[3].tags == ("alliance", "ja-team")
    text = re.search(r"`tags=URL`:\n\n```\n(.*?)```", rules_doc(), re.S)[1]
    (tmp_path / "alerts.txt").write_text(text, encoding="utf-8")
    tags = [set(channel.tags) for channel in load_channels(config=str(tmp_path / "alerts.txt"))]
    assert tags == [{"chips"}, {"taiwan", "econsec-en"}, {"alliance"}, {"all"}]
    routed = {tag for rule in rules for tag in rule.tags}
    assert routed - {t for ts in tags for t in ts} == {"ja-team"}  # the one tag left for the reader


def test_the_docs_error_line_is_the_real_one():
    with pytest.raises(RulesError) as err:
        rules_from_table({"rule": [{"name": "chips", "any": ["x"], "tag": ["chips"]}]}, "rules.toml")
    assert f"\n{err.value}\n" in rules_doc()


def test_the_docs_table_of_what_a_term_matches_is_true():
    table = rules_doc().split("### What a term matches", 1)[1].split("###", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \| (.*?) \| (.*?) \|$", table, re.M)
    assert len(rows) >= 10
    for term, yes, no in rows:
        for example in re.findall(r'"([^"]+)"', yes):
            assert matched(term, example), (term, example)
            assert oracle_contains(oracle_fold(example), term), (term, example)
        for example in re.findall(r'"([^"]+)"', no):
            assert not matched(term, example), (term, example)
            assert not oracle_contains(oracle_fold(example), term), (term, example)
