"""One text normalization for search and rules (issue 22): every article a watcher rule matches for
a term is a ``search`` hit for the same term, over generated texts of the kinds the site has
(full-width Latin, half-width katakana, line breaks inside Japanese words, English inflections),
on a real archive file."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from npi_crawler.archive import Archive
from npi_crawler.archive.records import ArticleRecord
from npi_crawler.research.search import search
from npi_crawler.rules.matching import Document, MatchIndex
from npi_crawler.rules.model import Rule
from npi_crawler.site.text import fold

PIECES = (
    # English words and inflections, digits, punctuation
    "AI", "ai", "sanction", "sanctions", "Sanctioned", "policy", "policies", "G7", "2024", "café", "-", ".", ",",
    # Japanese: kanji, kana, a one-character word, the marks of Japanese text
    "半導体", "半導", "体", "憲法", "改正", "経済安全保障", "米", "の", "を", "サプライチェーン", "ー", "・", "。", "「", "」", "々",
    # what folding must fix: full-width Latin, half-width katakana, a full-width space
    "ＡＩ", "ＥＵ", "Ｇ７", "ｶﾀｶﾅ", "ｻﾌﾟﾗｲ", "\u3000",
)  # fmt: skip
SPACES = ("", "", "", " ", "\n", "  ")  # a PDF's line break may fall inside a word
TEXT = st.lists(st.tuples(st.sampled_from(PIECES), st.sampled_from(SPACES)), max_size=14).map(
    lambda parts: "".join(p + s for p, s in parts)
)
URL = "https://npi.or.jp/research/2024/01/{:08d}.html"
PDF = "https://npi.or.jp/research/data/{:040d}.pdf"


@st.composite
def batches(draw):
    """A few articles (title, body, maybe a PDF's text) and terms cut from their raw text (so
    most match), plus a few from the vocabulary."""
    docs = draw(st.lists(st.tuples(TEXT, TEXT, st.none() | TEXT), min_size=1, max_size=3))
    texts = [t for doc in docs for t in doc if t]
    terms = []
    for _ in range(draw(st.integers(1, 4))):
        if texts and draw(st.booleans()):
            text = draw(st.sampled_from(texts))
            start = draw(st.integers(0, len(text)))
            terms.append(text[start : start + draw(st.integers(1, 8))])
        else:
            terms.append(draw(st.sampled_from(PIECES)))
    return docs, [t for t in terms if fold(t) and '"' not in t]


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    with Archive.open(tmp_path_factory.mktemp("folding") / "npi.db") as archive:
        yield archive


def store(archive: Archive, docs) -> list[Document]:
    with archive.atomic() as conn:
        for table in ("pdfs", "pdf_texts", "articles"):
            conn.execute(f"DELETE FROM {table}")  # the triggers empty the indexes too
    documents = []
    for n, (title, body, pdf_text) in enumerate(docs):
        pdfs = [PDF.format(n)] if pdf_text is not None else []
        article = {"url": URL.format(n), "lang": "ja", "title": title, "published": "2024-01-01"}
        archive.store_article(ArticleRecord(**article, body=body, pdfs=tuple(pdfs)), run_id=None)
        if pdf_text is not None:
            archive.store_pdf(pdfs[0], status="ok", run_id=None, text=pdf_text)
        pdf_parts = tuple((url, pdf_text) for url in pdfs)
        documents.append(Document(URL.format(n), "ja", (), title, body, pdf_parts))
    return documents


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches())
def test_every_rule_match_is_a_search_hit_for_the_same_term(archive, batch):
    docs, terms = batch
    documents = store(archive, docs)
    with MatchIndex(documents) as index:
        for term in terms:
            matched = {documents[n].url for n in index.matching_docs(Rule(name="r", any=(term,)))}
            found = {hit.url for hit in search(archive, '"' + term + '"', limit=100)}
            assert matched <= found, (term, fold(term), [fold(t or "") for d in docs for t in d])


def test_what_the_issue_saw(archive):
    """ＡＩ政策と半導 体: the rules AI and 半導体 match; so does search, and xqvw finds ＸＱＶＷ."""
    docs = [("ＡＩ政策と半導 体", "本文にＸＱＶＷと書く。", None), ("Taiwan", "Nothing here.", "生成ＡＩの報告")]
    documents = store(archive, docs)
    with MatchIndex(documents) as index:
        for term in ("AI", "半導体", "xqvw"):
            rule = {documents[n].url for n in index.matching_docs(Rule(name="r", any=(term,)))}
            hits = search(archive, term)
            assert {h.url for h in hits} == rule and rule, term
    assert [h.match for h in search(archive, "AI")] == ["text", "pdf"]  # not the Taiwan in a title
    assert "[XQVW]" in search(archive, "xqvw")[0].snippet  # the snippet shows the folded text


@pytest.mark.parametrize("term", ["AI", "ai", "ＡＩ", "半導体", "半導 体", "憲法", "米"])
def test_spellings_of_one_term_find_the_same_articles(archive, term):
    docs = [("ＡＩと憲法", "半導\n体の米国", None), ("AI and the 米", "憲法と半導体", None), ("none", "nothing", None)]
    store(archive, docs)
    urls = {h.url for h in search(archive, term)}
    assert urls == {URL.format(0), URL.format(1)}
