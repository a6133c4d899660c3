"""npi-crawler's Datasette plugin: the reading room of ``npi-crawler serve``.

Loaded by ``serve`` (and by any ``datasette`` run where npi-crawler is installed with its
``serve`` extra, through the ``datasette`` entry point), it acts on NPI archives only:

- **Search** (``/<db>/search``, ``.json`` too) runs ``npi-crawler search`` itself: the same
  ranking, English stemming, two-character Japanese terms, PDFs; the total; no SQL shown.
- **An article's row page** (``/<db>/articles/<key>``) reads as a page (templates/row.html):
  title, date, sections, authors linked to their expert rows, PDFs, the body in a readable
  column, its versions and what changed, links to the page as served (``/<db>/-/snapshot``) and
  to its citation (``/<db>/-/cite``: BibTeX, RIS, CSL-JSON), and Highwire ``citation_*`` meta
  tags for Zotero; the row as stored (every column) folded away.
- Internal columns (hashes, ETags, run ids, WARC record ids) are left out of the table pages
  unless asked for (``?_internal=1``, or any ``_col``/``_nocol``); the home page lists the
  articles and the search first.
- The delivery bookkeeping (``deliveries``, which holds a hash of each channel's URL, and the
  errors of ``alerts``, which name channels) is never shown: every connection to an archive
  reads those columns as NULL (a SQLite authorizer), unless ``serve --show-deliveries``.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from typing import Any
from urllib.parse import parse_qsl, urlencode

from datasette import hookimpl
from datasette.utils import tilde_decode, tilde_encode
from datasette.utils.asgi import Response
from markupsafe import Markup, escape

from npi_crawler.archive import Archive
from npi_crawler.archive.searchindex import is_archive, register_functions
from npi_crawler.errors import ArchiveError, SearchError
from npi_crawler.research.feed import xml_safe

PLUGIN = "npi-crawler"
PRIVATE = {"deliveries": None, "alerts": {"last_error"}}  # table -> its private columns (None: all)
INTERNAL = {
    "articles": ("content_hash", "etag", "last_modified", "last_fetched", "first_run_id", "parse_notes"),
    "revisions": ("content_hash",),
    "pdf_texts": ("etag", "last_modified", "content_type", "sha256", "run_id"),
    "experts": ("etag", "last_modified", "run_id", "parse_notes"),
    "warc_records": ("content_hash", "payload_digest", "record_id", "refers_to"),
}
CITATION_TYPES = {
    "bibtex": "application/x-bibtex",
    "ris": "application/x-research-info-systems",
    "csl-json": "application/vnd.citationstyles.csl+json",
}
MAX_LIMIT = 1000
_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")
_archives: dict[tuple[int, str], bool] = {}  # (Datasette, database name) -> an npi-crawler archive?


def _private(action: int, table: str | None, column: str | None, *_: Any) -> int:
    """SQLite authorizer: the private columns read as NULL (a count still works)."""
    if action == sqlite3.SQLITE_READ and column and table in PRIVATE:
        columns = PRIVATE[table]
        if columns is None or column in columns:
            return sqlite3.SQLITE_IGNORE
    return sqlite3.SQLITE_OK


def shows_deliveries(datasette: Any, database: str) -> bool:
    return bool((datasette.plugin_config(PLUGIN, database=database) or {}).get("show_deliveries"))


@hookimpl
def prepare_connection(conn: sqlite3.Connection, database: str, datasette: Any) -> None:
    register_functions(conn)  # search's scans and the folded text
    if is_archive(conn) and not shows_deliveries(datasette, database):
        conn.set_authorizer(_private)


def marks(snippet: str) -> Markup:
    """A search snippet as HTML: escaped, its [marked] terms in <mark>."""
    return Markup(re.sub(r"\[([^\[\]]*)\]", r"<mark>\1</mark>", str(escape(snippet))))


@hookimpl
def prepare_jinja2_environment(env: Any) -> None:
    env.filters.update(xml_safe=xml_safe, npi_marks=marks, tilde_encode=tilde_encode)


@hookimpl
def register_routes() -> list[tuple[str, Any]]:
    return [
        (r"^/(?P<database>[^/]+)/search(?P<ext>\.json)?$", search_page),
        (r"^/(?P<database>[^/]+)/-/cite$", cite_page),
        (r"^/(?P<database>[^/]+)/-/snapshot$", snapshot_page),
    ]


async def archive_database(datasette: Any, request: Any) -> Any:
    """The database the request names, if the actor may see it and it is an npi-crawler
    archive; else a Forbidden or NotFound error Datasette shows as its error page."""
    from datasette.utils.asgi import NotFound

    name = request.url_vars["database"]
    await datasette.ensure_permissions(request.actor, [("view-database", name), "view-instance"])
    if name not in datasette.databases or not await _is_archive_db(datasette, name):
        raise NotFound(f"{name} is not an npi-crawler archive")
    return datasette.get_database(name)


async def _is_archive_db(datasette: Any, name: str) -> bool:
    key = (id(datasette), name)
    if key not in _archives:
        _archives[key] = name in datasette.databases and await datasette.get_database(name).execute_fn(is_archive)
    return _archives[key]


def _reader(db: Any, fn: Any) -> Any:
    """Run ``fn(archive)`` on one of Datasette's read connections, as an ``Archive``."""
    return db.execute_fn(lambda conn: fn(Archive(conn, db.path, readonly=True)))


# -- the Search page ------------------------------------------------------------------------------


def is_date(text: str) -> bool:
    """``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``, a real date (as the command line's --since)."""
    m = _DATE.fullmatch(text)
    if m is None:
        return False
    try:
        return bool(dt.date(int(m[1]), int(m[2] or 1), int(m[3] or 1)))
    except ValueError:
        return False


def search_form(args: Any) -> tuple[dict[str, Any], str | None]:
    """The Search page's arguments as ``search()`` keywords, and the error of a bad one."""
    form = {
        "q": args.get("q", ""),
        "langs": [v for v in args.getlist("lang") if v],
        "sections": [v for v in args.getlist("section") if v],
        "since": args.get("since") or None,
        "until": args.get("until") or None,
        "author": args.get("author") or None,
    }
    for key in ("since", "until"):
        if form[key] and not is_date(form[key]):
            return form, f"{key} is a date like 2024, 2024-06 or 2024-06-30, not {form[key]!r}"
    limit = args.get("limit", "20")
    if not limit.isdigit() or not 1 <= int(limit) <= MAX_LIMIT:
        return form, f"limit is a number from 1 to {MAX_LIMIT}, not {limit!r}"
    form["limit"] = int(limit)
    return form, None


async def search_page(datasette: Any, request: Any) -> Response:
    from npi_crawler.research.search import search

    db = await archive_database(datasette, request)
    form, error = search_form(request.args)
    hits, total, exact = [], 0, True
    if not error and form["q"].strip():
        query = {k: v for k, v in form.items() if k != "q"}
        try:
            found = await _reader(db, lambda archive: search(archive, form["q"], **query))
            hits, total, exact = [h.as_dict() for h in found], found.total, found.exact
        except SearchError as exc:
            error = str(exc)
    status = 400 if error else 200
    if request.url_vars.get("ext") == ".json":
        return Response.json({"query": form["q"], "total": total, "total_exact": exact, "hits": hits, "error": error}, status=status)
    more = None
    if total > len(hits) or not exact:
        args = dict(parse_qsl(request.query_string, keep_blank_values=True))
        more = "?" + urlencode({**args, "limit": min(len(hits) + 50, MAX_LIMIT)})
    context = {"database": db.name, "form": form, "hits": hits, "total": total, "exact": exact, "error": error, "more": more}
    html = await datasette.render_template("npi_search.html", context, request=request)
    return Response.html(html, status=status)


# -- citations and the page as served ----------------------------------------------------------------


async def cite_page(datasette: Any, request: Any) -> Response:
    from npi_crawler.research.citations import cite

    db = await archive_database(datasette, request)
    url, fmt = request.args.get("url", ""), request.args.get("format", "bibtex")
    if fmt not in CITATION_TYPES:
        return Response.text(f"format is one of {', '.join(CITATION_TYPES)}, not {fmt!r}", status=400)
    try:
        text = await _reader(db, lambda archive: cite(archive, url, fmt))
    except ArchiveError as exc:
        return Response.text(str(exc), status=404)
    return Response(text, status=200, content_type=f"{CITATION_TYPES[fmt]}; charset=utf-8")


async def snapshot_page(datasette: Any, request: Any) -> Response:
    """The page as it was served, from the WARC files, in a sandbox: the site's scripts never run
    with the archive's origin (``Content-Security-Policy: sandbox``)."""
    from npi_crawler.research.snapshot import find_snapshot

    db = await archive_database(datasette, request)
    try:
        shot = await _reader(db, lambda archive: find_snapshot(archive, request.args.get("url", "")))
    except ArchiveError as exc:
        return Response.text(str(exc), status=404)
    headers = {"Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff"}
    kind = shot.response.header("Content-Type") or "application/octet-stream"
    return Response(shot.response.body, status=200, headers=headers, content_type=kind)


# -- pages: the article's row, the home page, the table pages ---------------------------------------


@hookimpl
def extra_template_vars(view_name: str, table: str | None, database: str | None, request: Any, datasette: Any) -> Any:
    if view_name == "row" and table == "articles" and request is not None and database is not None:
        return _article_vars(datasette, database, request)
    if view_name == "index":
        return _index_vars(datasette)
    return {}


async def _article_vars(datasette: Any, database: str, request: Any) -> dict[str, Any]:
    from npi_crawler.research.article_page import article_page

    if not await _is_archive_db(datasette, database):
        return {}
    url = tilde_decode(request.url_vars["pks"])
    db = datasette.get_database(database)
    page = await _reader(db, lambda archive: article_page(archive, url))
    if page is None:
        return {}
    for author in page.authors:
        if author["expert"] and author["profile_url"]:
            author["link"] = datasette.urls.row(database, "experts", tilde_encode(author["profile_url"]))
    query = urlencode({"url": url})
    links = {fmt: f"{datasette.urls.database(database)}/-/cite?{query}&format={fmt}" for fmt in CITATION_TYPES}
    snapshot = f"{datasette.urls.database(database)}/-/snapshot?{query}" if page.served else None
    return {"npi_article": page, "npi_cite": links, "npi_snapshot": snapshot}


async def _index_vars(datasette: Any) -> dict[str, Any]:
    names = [name for name in datasette.databases if name != "_internal" and await _is_archive_db(datasette, name)]
    return {"npi_archives": names}


@hookimpl
def extra_body_script(view_name: str, database: str | None, datasette: Any) -> Any:
    # A table page lists every column's description before its rows: fold them away.
    if view_name != "table" or database is None:
        return ""

    async def script() -> str:
        if not await _is_archive_db(datasette, database):
            return ""
        return (
            "const dl = document.querySelector('dl.column-descriptions');"
            "if (dl) { const d = document.createElement('details'), s = document.createElement('summary');"
            "s.textContent = 'Column descriptions'; dl.replaceWith(d); d.append(s, dl); }"
        )

    return script


@hookimpl
def asgi_wrapper(datasette: Any) -> Any:
    """A table page of an archive shows no internal column unless the URL picks columns."""

    def wrap(app: Any) -> Any:
        async def hide_internal_columns(scope: dict, receive: Any, send: Any) -> None:
            if scope.get("type") == "http":
                scope = await _without_internal(datasette, scope)
            await app(scope, receive, send)

        return hide_internal_columns

    return wrap


async def _without_internal(datasette: Any, scope: dict) -> dict:
    m = re.fullmatch(r"/([^/]+)/([^/.]+)", scope.get("path", ""))
    if not m or m[2] not in INTERNAL or m[1] not in datasette.databases:
        return scope
    args = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    if any(k in ("_col", "_nocol", "_internal") for k, _ in args) or not await _is_archive_db(datasette, m[1]):
        return scope
    hidden = urlencode([*args, *(("_nocol", c) for c in INTERNAL[m[2]])]).encode("latin-1")
    return {**scope, "query_string": hidden}
