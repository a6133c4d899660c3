"""Citations of archived articles for reference managers (Zotero, JabRef, EndNote, LaTeX).

Pure functions: an article in export shape (the dict ``Archive.iter_articles`` yields: url, lang,
title, published, sections, authors, pdfs, last_seen) becomes a CSL-JSON item, a BibTeX entry or
a RIS record; ``export_citations`` and ``cite`` read the articles and their experts from the
archive. The three formats are written by hand: each is a few lines of text with simple quoting
rules, and the tests read the output back with the real parsers (citeproc-py, bibtexparser,
rispy), so no runtime dependency is needed.

Decisions (see docs/research.md):

- **Type.** A policy proposal (in the ``policy`` section) that links a PDF is a report (CSL
  ``report``, BibTeX ``@techreport``, RIS ``RPRT``), with the genre "Policy proposal" / 政策提言
  and the place Tokyo. Everything else is a web page (CSL ``webpage``, biblatex ``@online``, RIS
  ``ELEC``): what is cited is the page as published on the institute's site.
- **Publisher.** Nakasone Peace Institute for English pages, 中曽根康弘世界平和研究所 for Japanese
  ones: the publisher of a report (CSL ``publisher``, BibTeX ``institution``, RIS ``PB``); for a
  web page, the website's name (CSL ``container-title``, Zotero's "Website Title"; a publisher as
  well would be printed twice by styles), biblatex ``organization``, RIS ``PB`` and ``T2``.
- **Dates.** issued = the publication date (left out when the page has none: "n.d."); accessed =
  ``last_seen``, the last time a crawl saw the page live (its UTC date).
- **URL.** Always the article page (what the archive and its WARC records are keyed by). The PDFs
  go where each format keeps links to files: RIS ``L1`` (Zotero attaches them as links), and a
  ``PDF: <url>`` line in CSL ``note`` (Zotero's Extra) and in BibTeX ``note``.
- **Affiliations.** An author's position as their expert page gives it (``experts.title``, e.g.
  Senior Research Fellow / 上席研究員), when the page has been fetched: RIS ``AD`` (Zotero keeps it
  in the item's notes), a BibTeX ``affiliation`` field (as Web of Science exports write it), and
  an ``Affiliation: name: position`` line in CSL ``note`` (CSL names have no affiliation).
- **Names.** A name written in Japanese script (中曽根 康弘) is one literal name: CSL
  ``{"literal": ...}``, a braced ``{中曽根 康弘}`` in BibTeX, as typed in RIS. Splitting it into
  family/given would let styles reorder, comma-separate or abbreviate it ("中曽根, 康."). A
  Latin-script name is split: a token in capitals is the family name (NAKASONE Yasuhiro, the
  Japanese convention), else the last token (Taro Nakasone); a name with a comma is already
  "Family, Given"; a single word stays literal. An article that names no author is credited to
  the institute (the publisher's name, one literal name), so styles never print its title twice.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TextIO
from urllib.parse import urlsplit

from npi_crawler.archive import Archive
from npi_crawler.errors import ArchiveError
from npi_crawler.site.text import JAPANESE
from npi_crawler.site.urls import canonical_url, lang_from_url

PUBLISHER = {"en": "Nakasone Peace Institute", "ja": "中曽根康弘世界平和研究所"}
PLACE = {"en": "Tokyo", "ja": "東京"}
REPORT_GENRE = {"en": "Policy proposal", "ja": "政策提言"}
BIBTEX_LANGUAGE = {"en": "english", "ja": "japanese"}  # biblatex's language keys
FORMATS = ("csl-json", "bibtex", "ris")

Article = Mapping[str, Any]

_JAPANESE = re.compile(f"[{JAPANESE}]")


def citation_type(article: Article) -> str:
    """``report`` for a policy proposal with a PDF, else ``webpage`` (CSL type names)."""
    if "policy" in (article.get("sections") or ()) and article.get("pdfs"):
        return "report"
    return "webpage"


def citation_key(url: str) -> str:
    """A stable key from the article's path: /en/research/2025/06/30150000.html gives
    ``npi-en-2025-06-30150000``; the same in every format, so a BibTeX key matches a CSL id."""
    path, lang = urlsplit(url).path, lang_from_url(url)
    path = re.sub(r"^/en(?=/|$)", "", path)
    path = re.sub(r"^/research(?=/)", "", path)
    path = re.sub(r"\.html?$", "", path)
    slug = re.sub(r"[^A-Za-z0-9]+", "-", path).strip("-")
    return f"npi-{lang}-{slug}" if slug else f"npi-{lang}"


def authors_of(article: Article) -> list[tuple[str, str | None]]:
    """(name, affiliation) of each author, the name as the article gives it. An author may be a
    name, a (name, profile_url) pair as the parser yields it, or a mapping with ``name`` and
    ``affiliation`` keys (``with_authors``)."""
    authors = []
    for author in article.get("authors") or ():
        affiliation = None
        if isinstance(author, Mapping):
            name, affiliation = author.get("name"), author.get("affiliation")
        elif isinstance(author, (list, tuple)):
            name = author[0]
        else:
            name = author
        name = " ".join(str(name or "").split())
        if name:
            authors.append((name, " ".join(affiliation.split()) if affiliation else None))
    return authors


def author_names(article: Article) -> list[str]:
    """The authors' names as the article gives them."""
    return [name for name, _ in authors_of(article)]


def cited_authors(article: Article) -> list[dict[str, str]]:
    """CSL names of whom a citation credits: the authors, or the institute itself (one literal
    name) when the page names none. Styles put the title in an authorless item's author place
    and then print it again ("Commentary (2025) Commentary, ..."); a corporate author is what a
    reference manager records for an institute's unsigned paper."""
    names = author_names(article)
    if not names:
        return [{"literal": PUBLISHER[_lang(article)]}]
    return [split_name(n) for n in names]


def _affiliations(article: Article) -> list[str]:
    """``name: position`` for each author whose position is known."""
    return [f"{name}: {affiliation}" for name, affiliation in authors_of(article) if affiliation]


def split_name(name: str) -> dict[str, str]:
    """A CSL name: ``{"literal": name}`` for Japanese script and single words, else family and
    given (see the module's notes)."""
    name = " ".join(name.split())
    if _JAPANESE.search(name):
        return {"literal": name}
    if "," in name:
        family, given = (part.strip() for part in name.split(",", 1))
        return {"family": family, "given": given} if family and given else {"literal": name}
    tokens = name.split(" ")
    if len(tokens) < 2:
        return {"literal": name}
    capitals = [t for t in tokens if len(t) > 1 and t.isalpha() and t.isupper()]
    if len(capitals) == 1 and len(capitals) < len(tokens):
        family = capitals[0]
        return {"family": family, "given": " ".join(t for t in tokens if t is not family)}
    return {"family": tokens[-1], "given": " ".join(tokens[:-1])}


def _date_parts(value: str | None) -> list[int] | None:
    """[Y, M, D] from ``YYYY-MM-DD`` or an ISO timestamp; None when absent or unreadable."""
    m = re.match(r"(\d{4})-(\d{2})-(\d{2})", value or "")
    return [int(m[1]), int(m[2]), int(m[3])] if m else None


def _lang(article: Article) -> str:
    return "en" if article.get("lang") == "en" else "ja"


# -- CSL-JSON -------------------------------------------------------------------------------------


def csl_item(article: Article) -> dict[str, Any]:
    """One CSL-JSON item (the format Zotero, Pandoc and citeproc processors read)."""
    lang = _lang(article)
    kind = citation_type(article)
    item: dict[str, Any] = {
        "id": citation_key(article["url"]),
        "type": kind,
        "title": article.get("title") or article["url"],
        "language": lang,
        "URL": article["url"],
    }
    item["author"] = cited_authors(article)
    if issued := _date_parts(article.get("published")):
        item["issued"] = {"date-parts": [issued]}
    if accessed := _date_parts(article.get("last_seen")):
        item["accessed"] = {"date-parts": [accessed]}
    if kind == "report":
        item.update(publisher=PUBLISHER[lang], genre=REPORT_GENRE[lang])
        item["publisher-place"] = PLACE[lang]
    else:  # the site's name: Zotero's "Website Title" (a web page has no publisher field)
        item["container-title"] = PUBLISHER[lang]
    notes = [f"Affiliation: {a}" for a in _affiliations(article)]
    notes += [f"PDF: {pdf}" for pdf in article.get("pdfs") or ()]
    if notes:
        item["note"] = "\n".join(notes)
    return item


# -- BibTeX ---------------------------------------------------------------------------------------

_BIBTEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_BIBTEX_SPECIAL_RE = re.compile("|".join(re.escape(c) for c in _BIBTEX_SPECIAL))


def bibtex_escape(text: str) -> str:
    """Text safe inside a braced BibTeX field: LaTeX's special characters escaped (Unicode, the
    Japanese included, is kept as is: biber and XeLaTeX/LuaLaTeX read UTF-8)."""
    return _BIBTEX_SPECIAL_RE.sub(lambda m: _BIBTEX_SPECIAL[m[0]], " ".join(text.split()))


def _bibtex_name(parts: dict[str, str]) -> str:
    if "literal" in parts:  # braced: BibTeX must not split it into first and last names
        return "{" + bibtex_escape(parts["literal"]) + "}"
    return f"{bibtex_escape(parts['family'])}, {bibtex_escape(parts['given'])}"


def bibtex_entry(article: Article, key: str | None = None) -> str:
    """One biblatex entry: ``@techreport`` for a report, ``@online`` for a web page."""
    lang = _lang(article)
    report = citation_type(article) == "report"
    fields: list[tuple[str, str]] = [
        # The inner braces keep the title's capitals (Japan, Indo-Pacific) from being lower-cased.
        ("title", "{" + bibtex_escape(article.get("title") or article["url"]) + "}"),
    ]
    fields.append(("author", " and ".join(_bibtex_name(n) for n in cited_authors(article))))
    if affiliations := _affiliations(article):
        fields.append(("affiliation", bibtex_escape("; ".join(affiliations))))
    if report:
        fields += [
            ("institution", PUBLISHER[lang]),
            ("address", PLACE[lang]),
            ("type", REPORT_GENRE[lang]),
        ]
    else:
        fields.append(("organization", PUBLISHER[lang]))
    if issued := _date_parts(article.get("published")):
        fields += [("date", "{:04d}-{:02d}-{:02d}".format(*issued)), ("year", str(issued[0]))]
    fields += [("url", article["url"]), ("language", BIBTEX_LANGUAGE[lang])]
    if accessed := _date_parts(article.get("last_seen")):
        fields.append(("urldate", "{:04d}-{:02d}-{:02d}".format(*accessed)))
    if article.get("pdfs"):
        fields.append(("note", "; ".join(f"PDF: \\url{{{pdf}}}" for pdf in article["pdfs"])))
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields)
    kind = "techreport" if report else "online"
    return f"@{kind}{{{key or citation_key(article['url'])},\n{body}\n}}\n"


# -- RIS ------------------------------------------------------------------------------------------


def _ris_name(parts: dict[str, str]) -> str:
    return parts["literal"] if "literal" in parts else f"{parts['family']}, {parts['given']}"


def ris_record(article: Article, key: str | None = None) -> str:
    """One RIS record, ``TY`` to ``ER`` (the format EndNote and Zotero import)."""
    lang = _lang(article)
    report = citation_type(article) == "report"
    tags: list[tuple[str, str]] = [
        ("TY", "RPRT" if report else "ELEC"),
        ("ID", key or citation_key(article["url"])),
        ("TI", article.get("title") or article["url"]),
    ]
    tags += [("AU", _ris_name(n)) for n in cited_authors(article)]
    if affiliations := _affiliations(article):
        tags.append(("AD", "; ".join(affiliations)))
    if issued := _date_parts(article.get("published")):
        tags += [("PY", str(issued[0])), ("DA", "{:04d}/{:02d}/{:02d}".format(*issued))]
    tags.append(("PB", PUBLISHER[lang]))
    if report:
        tags += [("CY", PLACE[lang]), ("M3", REPORT_GENRE[lang])]
    else:
        tags.append(("T2", PUBLISHER[lang]))
    tags += [("LA", lang), ("UR", article["url"])]
    if accessed := _date_parts(article.get("last_seen")):
        tags.append(("Y2", "{:04d}/{:02d}/{:02d}".format(*accessed)))
    tags += [("L1", pdf) for pdf in article.get("pdfs") or ()]
    lines = [f"{tag}  - {' '.join(value.split())}" for tag, value in tags]
    return "\n".join([*lines, "ER  - "]) + "\n"


# -- Highwire meta tags ---------------------------------------------------------------------------


def highwire_tags(article: Article) -> list[tuple[str, str]]:
    """The ``citation_*`` meta tags of an article's page (Highwire Press's names, which Zotero's
    connector and Google Scholar read from a page's head): the same facts as the other formats,
    the institute as author when the page names none."""
    lang = _lang(article)
    tags = [("citation_title", article.get("title") or article["url"])]
    tags += [("citation_author", name) for name in _cited_names(article)]
    if issued := _date_parts(article.get("published")):
        tags.append(("citation_publication_date", "{:04d}/{:02d}/{:02d}".format(*issued)))
    tags += [("citation_pdf_url", pdf) for pdf in article.get("pdfs") or ()]
    tags += [("citation_language", lang), ("citation_publisher", PUBLISHER[lang])]
    if citation_type(article) == "report":
        tags.append(("citation_technical_report_institution", PUBLISHER[lang]))
    tags.append(("citation_abstract_html_url", article["url"]))
    return [(name, " ".join(value.split())) for name, value in tags]


def _cited_names(article: Article) -> list[str]:
    """Whom a citation credits, each as one string: a literal name, else "Family, Given"."""
    return [_ris_name(parts) for parts in cited_authors(article)]


# -- whole exports --------------------------------------------------------------------------------


def _unique_keys(articles: Iterable[Article]) -> Iterator[tuple[Article, str]]:
    """Each article with its key; a repeated key gets ``-2``, ``-3``..."""
    seen: dict[str, int] = {}
    for article in articles:
        key = citation_key(article["url"])
        seen[key] = seen.get(key, 0) + 1
        yield article, key if seen[key] == 1 else f"{key}-{seen[key]}"


def write_citations(articles: Iterable[Article], fmt: str, out: TextIO) -> int:
    """Write ``articles`` in ``fmt`` (one of FORMATS) to ``out``, streamed: a JSON array for
    csl-json, entries separated by a blank line for BibTeX and RIS. Returns how many."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown citation format {fmt!r}; choose one of {', '.join(FORMATS)}")
    count = 0
    if fmt == "csl-json":
        out.write("[")
    for article, key in _unique_keys(articles):
        if fmt == "csl-json":
            item = json.dumps({**csl_item(article), "id": key}, ensure_ascii=False)
            out.write((",\n" if count else "\n") + item)
        else:
            entry = bibtex_entry(article, key) if fmt == "bibtex" else ris_record(article, key)
            out.write(("\n" if count else "") + entry)
        count += 1
    if fmt == "csl-json":
        out.write("\n]\n" if count else "]\n")
    return count


def citations_text(articles: Iterable[Article], fmt: str) -> str:
    """The whole export as one string (for ``cite URL`` and small exports)."""
    buffer = io.StringIO()
    write_citations(articles, fmt, buffer)
    return buffer.getvalue()


# -- from the archive -----------------------------------------------------------------------------


def with_authors(archive: Archive, articles: Iterable[Article]) -> Iterator[dict[str, Any]]:
    """``articles`` (export shape) with each author as a mapping: name, profile URL and the
    position their expert page gives (``affiliation``, None until the page is fetched)."""
    for article in articles:
        rows = archive.article_authors([article["url"]])[article["url"]]
        authors = [{"name": r["name"], "profile_url": r["profile_url"], "affiliation": r["title"]} for r in rows]
        yield {**article, "authors": authors}


def export_citations(archive: Archive, fmt: str, out: TextIO, **filters: Any) -> int:
    """Every article the export filters select (``iter_articles``' keyword arguments), as
    citations in ``fmt``, newest first. Returns how many."""
    return write_citations(with_authors(archive, archive.iter_articles(**filters)), fmt, out)


def cite(archive: Archive, url: str, fmt: str) -> str:
    """The citation of the archived article at ``url`` (as given, or canonical: www. folded,
    fragment dropped), removed from the site or not. Raises ArchiveError when it is not archived."""
    row = archive.find_article(url, canonical_url(url))
    if row is None:
        raise ArchiveError(
            f"{url} is not in the archive {archive.path}; give the URL of an archived article "
            "(find it with 'npi-crawler search')"
        )
    return citations_text(with_authors(archive, archive.iter_articles(url=row["url"])), fmt)
