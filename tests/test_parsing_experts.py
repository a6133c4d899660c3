"""Expert pages: the replica's (served over HTTP) and hand-made variants, each fallback noted."""

from __future__ import annotations

import urllib.request

import pytest

from npi_crawler.site.experts import parse_expert_page
from tests.site import ReplicaServer, generate_site
from tests.site.model import Expert
from tests.site.render import render

SITE = generate_site(seed=2, n_articles=30)
EXPERT_PATHS = sorted({path for a in SITE.live() for _name, path in a.authors})


def test_the_replica_has_expert_pages_in_both_languages():
    langs = {Expert(p, "").lang for p in EXPERT_PATHS}
    assert langs == {"ja", "en"}
    assert render(SITE, "/experts/nobody.html").status == 404


@pytest.mark.parametrize("path", EXPERT_PATHS)
def test_every_replica_expert_page(path):
    expert = SITE.expert(path)
    parsed = parse_expert_page(render(SITE, path).body.decode(), "https://www.npi.or.jp" + path)
    assert parsed.url == "https://npi.or.jp" + path and parsed.lang == expert.lang
    assert (parsed.name, parsed.title) == (expert.name, expert.title)
    assert parsed.areas == ("、" if expert.lang == "ja" else ", ").join(expert.areas)
    assert parsed.biography == expert.biography
    assert parsed.notes == []


def test_an_expert_page_served_by_the_replica():
    path = next(p for p in EXPERT_PATHS if p.startswith("/en/"))
    with ReplicaServer(SITE) as replica:
        with urllib.request.urlopen(replica.url.rstrip("/") + path, timeout=10) as answer:
            html = answer.read().decode()
    parsed = parse_expert_page(html, "https://npi.or.jp" + path)
    assert (parsed.name, parsed.title) == (SITE.expert(path).name, SITE.expert(path).title)


ARTICLE_BOX = """<html><head><title>山田 花子 | 中曽根康弘世界平和研究所</title></head><body>
<div id="main"><div class="expert_box"><a class="btn_bluecorner" href="/experts/yamada.html">
<div class="name b05">山田　花子</div><div class="post">上席研究員（経済安全保障）</div></a></div>
<p class="btn_back"><a href="javascript:history.back();">&lt; 前のページへ戻る</a></p></div></body></html>"""


def test_the_author_box_layout_gives_name_and_position_with_a_note():
    parsed = parse_expert_page(ARTICLE_BOX, "https://npi.or.jp/experts/yamada.html")
    assert (parsed.name, parsed.title, parsed.lang) == ("山田 花子", "上席研究員（経済安全保障）", "ja")
    assert parsed.notes == ["fallback/expert_title_post"]
    assert parsed.areas is None and parsed.biography is None


def test_without_the_name_div_the_page_title_gives_the_name():
    html = """<html><head><meta property="og:title" content="Taro Nakasone | Nakasone Peace Institute">
    </head><body><div id="main"><h3 class="ttl_second b30"><div class="date">Research Fellow</div></h3>
    <h4>Areas of Expertise</h4><p>Diplomacy and Security</p><p>Economy and Society</p></div></body></html>"""
    parsed = parse_expert_page(html, "https://npi.or.jp/en/experts/nakasone.html")
    assert (parsed.name, parsed.title, parsed.lang) == ("Taro Nakasone", "Research Fellow", "en")
    assert parsed.areas == "Diplomacy and Security\n\nEconomy and Society"
    assert parsed.notes == ["fallback/expert_name_title"]


@pytest.mark.parametrize(
    "html",
    [
        "",
        "<html><body><p>Not found</p></body></html>",
        '<div id="main"><h3><div class="date">' + "長い段落。" * 40 + "</div></h3></div>",
    ],
)
def test_a_page_that_is_not_an_expert_page_says_what_is_missing(html):
    parsed = parse_expert_page(html, "https://npi.or.jp/experts/x.html")
    assert parsed.name is None and parsed.title is None
    assert {"miss/expert_name", "miss/expert_title"} <= set(parsed.notes)
