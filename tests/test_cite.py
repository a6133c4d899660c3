"""`export --format csl-json|bibtex|ris` and `cite URL` over an archive crawled from the replica
(articles, their authors and the authors' expert pages), read back by the parsers reference
managers rely on: citeproc-py, bibtexparser, rispy."""

from __future__ import annotations

import json
import re

import bibtexparser
import bibtexparser.middlewares as bib_mw
import pytest
import rispy
from citeproc import Citation, CitationItem, CitationStylesBibliography, CitationStylesStyle, formatter
from citeproc.source.json import CiteProcJSON

from npi_crawler.research.citations import PUBLISHER
from tests.conftest import crawl, run_cli
from tests.site import ReplicaServer, generate_site

JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def crawled(tmp_path_factory):
    site = generate_site(seed=4, n_articles=40, per_page=5)
    db_path = str(tmp_path_factory.mktemp("cite") / "npi.db")
    with ReplicaServer(site) as replica:
        crawl(replica, db_path)
        base = replica.url.rstrip("/")
    articles = site.expected_export(base)
    assert any(JAPANESE.search(a["title"]) for a in articles) and any(a["lang"] == "en" for a in articles)
    return {"db": db_path, "site": site, "base": base, "articles": articles}


def export(crawled, fmt: str, *args: str) -> str:
    result = run_cli("export", "--db", crawled["db"], "--format", fmt, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def positions(crawled, article: dict) -> list[str]:
    """'name: position' of each author, from the replica's expert pages."""
    model = crawled["site"].articles[article["url"].removeprefix(crawled["base"])]
    return [f"{name}: {crawled['site'].expert(path).title}" for name, path in model.authors]


def test_csl_json_is_one_item_per_article_and_renders(crawled):
    items = json.loads(export(crawled, "csl-json"))
    articles = crawled["articles"]
    assert isinstance(items, list) and len(items) == len(articles)
    for item, article in zip(items, articles, strict=True):
        assert (item["title"], item["URL"], item["language"]) == (article["title"], article["url"], article["lang"])
        assert item["issued"] == {"date-parts": [[int(p) for p in article["published"].split("-")]]}
        names = [a.get("literal") or f"{a['given']} {a['family']}" for a in item.get("author", [])]
        # Japanese names whole, English ones split and rejoined; none: the institute
        assert names == (article["authors"] or [PUBLISHER[article["lang"]]])
        affiliations = [n.removeprefix("Affiliation: ") for n in item.get("note", "").splitlines() if n.startswith("Affiliation: ")]
        assert affiliations == positions(crawled, article)
    style = CitationStylesStyle("harvard-cite-them-right", validate=False)
    bibliography = CitationStylesBibliography(style, CiteProcJSON(items), formatter.plain)
    for item in items:
        bibliography.register(Citation([CitationItem(item["id"])]))
    rendered = [str(entry) for entry in bibliography.bibliography()]
    assert len(rendered) == len(items)
    assert all(any(item["title"] in entry for entry in rendered) for item in items)
    assert all(entry.count(item["title"]) == 1 for item in items for entry in rendered if item["URL"] in entry)


def test_bibtex_is_one_entry_per_article_with_title_and_url(crawled):
    library = bibtexparser.parse_string(
        export(crawled, "bibtex"),
        append_middleware=[bib_mw.SeparateCoAuthors(), bib_mw.SplitNameParts(), bib_mw.LatexDecodingMiddleware()],
    )
    assert not library.failed_blocks
    articles = {a["url"]: a for a in crawled["articles"]}
    assert len(library.entries) == len(articles)
    for entry in library.entries:
        article = articles[entry["url"]]
        assert entry["title"] == article["title"]  # Japanese titles round-trip
        names = [" ".join([*n.first, *n.last]).strip("{}") for n in entry.fields_dict["author"].value]
        assert names == (article["authors"] or [PUBLISHER[article["lang"]]])
        if article["authors"]:
            assert entry["affiliation"] == "; ".join(positions(crawled, article))


def test_ris_is_one_record_per_article(crawled):
    text = export(crawled, "ris")
    assert text.count("TY  - ") == text.count("ER  - ") == len(crawled["articles"])
    records = rispy.loads(text)
    for record, article in zip(records, crawled["articles"], strict=True):
        assert (record["title"], record["urls"], record["language"]) == (article["title"], [article["url"]], article["lang"])
        names = [n if JAPANESE.search(n) or "," not in n else " ".join(reversed(n.split(", "))) for n in record["authors"]]
        assert names == (article["authors"] or [PUBLISHER[article["lang"]]])
        assert record.get("author_address", "") == "; ".join(positions(crawled, article))


def test_the_export_filters_apply_to_citations(crawled):
    chosen = [a for a in crawled["articles"] if a["lang"] == "ja" and "policy" in a["sections"]]
    items = json.loads(export(crawled, "csl-json", "--lang", "ja", "--section", "policy"))
    assert [i["URL"] for i in items] == [a["url"] for a in chosen] != []
    reports = [i for i in items if i["type"] == "report"]
    assert reports and all(i["publisher"] == "中曽根康弘世界平和研究所" for i in reports)
    name = next(a for a in crawled["articles"] if a["authors"])["authors"][0]
    by = [a["url"] for a in crawled["articles"] if name in a["authors"]]
    assert [i["URL"] for i in json.loads(export(crawled, "csl-json", "--author", name))] == by


def test_cite_one_article_in_each_format(crawled):
    article = next(a for a in crawled["articles"] if JAPANESE.search(a["title"]) and a["authors"])
    for fmt, check in (
        ("bibtex", lambda out: bibtexparser.parse_string(out, append_middleware=[bib_mw.LatexDecodingMiddleware()]).entries[0]["title"]),
        ("csl-json", lambda out: json.loads(out)[0]["title"]),
        ("ris", lambda out: rispy.loads(out)[0]["title"]),
    ):
        result = run_cli("cite", "--db", crawled["db"], "--format", fmt, article["url"] + "#top")  # a fragment is no other page
        assert result.returncode == 0, result.stderr
        assert check(result.stdout) == article["title"]
    assert run_cli("cite", "--db", crawled["db"], article["url"]).stdout.startswith("@")  # BibTeX by default


def test_cite_and_export_refuse_what_they_cannot_do_in_one_line(crawled):
    missing = run_cli("cite", "--db", crawled["db"], crawled["base"] + "/research/1999/01/01000000.html")
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.startswith("Error: ") and missing.stderr.count("\n") == 1 and "not in the archive" in missing.stderr
    for args in (["cite", crawled["articles"][0]["url"], "--format", "endnote"], ["export", "--format", "bibtex", "--revisions"]):
        result = run_cli(*args, "--db", crawled["db"])
        assert result.returncode == 2 and result.stdout == "" and result.stderr.count("\n") == 1, args


def test_a_removed_article_is_still_citable(crawled, tmp_path):
    site = crawled["site"].copy()
    db_path = str(tmp_path / "npi.db")
    with ReplicaServer(site) as replica:
        crawl(replica, db_path)
        gone = site.live()[3]
        site.remove(gone.path)
        crawl(replica, db_path, "--full")
        url = replica.url.rstrip("/") + gone.path
    cited = run_cli("cite", "--db", db_path, "--format", "ris", url)
    assert cited.returncode == 0 and rispy.loads(cited.stdout)[0]["urls"] == [url]
    live = run_cli("export", "--db", db_path, "--format", "ris").stdout
    everything = run_cli("export", "--db", db_path, "--format", "ris", "--include-removed").stdout
    assert url not in live and url in everything
