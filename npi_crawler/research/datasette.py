"""``npi-crawler serve``: Datasette over the archive, with its metadata, canned queries and the
reading room plugin (research/datasette_plugin: article pages, the Search page, citations).

Datasette is an optional extra (``pip install 'npi-crawler[serve]'``): it brings a web stack the
crawler itself does not need.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from npi_crawler.archive import Archive
from npi_crawler.archive.queries import QUERIES
from npi_crawler.errors import ArchiveError

SOURCE = (
    "Crawled from the Nakasone Peace Institute's website (npi.or.jp) by npi-crawler. The texts "
    "are NPI's; cite the article URL and respect NPI's copyright."
)

COLUMNS = {
    "articles": {
        "url": "Canonical URL of the article page (the key)",
        "lang": "ja or en",
        "title": "Title, whitespace folded",
        "published": "Publication date YYYY-MM-DD (Japan time)",
        "body": "Clean text, one paragraph per block",
        "content_hash": "SHA-256 of title, date, body, PDFs and authors",
        "first_seen": "When the archive first stored it (UTC)",
        "last_seen": "When a crawl last saw it",
        "last_fetched": "When its page was last requested",
        "last_changed": "When its content last changed",
        "first_run_id": "The run that found it",
        "etag": "ETag of the page, for conditional GET",
        "last_modified": "Last-Modified of the page",
        "removed_at": "When its page answered 404/410 (null while live)",
        "removed_status": "404 or 410",
        "parse_notes": "Parser fallbacks used for this page (JSON)",
    },
    "pdf_texts": {
        "url": "Absolute URL of the PDF",
        "status": "ok, no_text, broken, encrypted, too_large, http_NNN or error",
        "error": "Why the text could not be read",
        "text": "The PDF's text layer, page after page",
        "pages": "Number of pages",
        "size": "Bytes downloaded",
        "etag": "ETag, for conditional GET",
        "last_modified": "Last-Modified, for conditional GET",
    },
    "revisions": {
        "article_url": "The edited article",
        "run_id": "The run that found the edit",
        "replaced_at": "When this version was replaced",
        "title": "Old title",
        "body": "Old body",
    },
}

# The monitor's bookkeeping: listed nowhere; the deliveries (a hash of each channel's URL) are
# refused to everyone, and the plugin's authorizer reads them as NULL in any SQL.
PRIVATE_TABLES = {"deliveries": {"hidden": True, "allow": False}}
HIDDEN_TABLES = ("migrations", "watch_scopes", "watch_rules")


def metadata(db_path: str, *, show_deliveries: bool = False) -> dict[str, Any]:
    """Datasette metadata for the archive at ``db_path`` (its database name is the file's stem).
    ``show_deliveries``: the delivery tables too (they name the notification channels)."""
    name = Path(db_path).stem
    tables = {t: {"hidden": True} for t in HIDDEN_TABLES}
    if not show_deliveries:
        tables.update(PRIVATE_TABLES)
    return {
        "title": "NPI archive",
        "description": "Articles of the Nakasone Peace Institute (中曽根康弘世界平和研究所), "
        "Japanese and English, with their sections, authors, PDFs and edit history.",
        "license": "Texts © Nakasone Peace Institute; see the source for terms",
        "license_url": "https://npi.or.jp/",
        "source": "npi.or.jp, crawled by npi-crawler",
        "source_url": "https://npi.or.jp/",
        "about": "npi-crawler",
        "about_url": "https://github.com/npi-crawler/npi-crawler",
        "databases": {
            name: {
                "description": SOURCE,
                "tables": {
                    "articles": {
                        "description": "One row per article page; click an article's key to read it. "
                        "This table's search box matches any substring of 3+ characters of the title or "
                        "body (FTS5 trigram), newest first; the Search page searches as npi-crawler "
                        "search does (ranked, English stemmed, two-character Japanese terms, PDFs).",
                        "fts_table": "articles_fts",
                        "fts_pk": "rowid",
                        "sort_desc": "published",
                        "columns": COLUMNS["articles"],
                    },
                    "pdf_texts": {
                        "description": "Text of the PDFs articles link to, one row per PDF.",
                        "fts_table": "pdf_texts_fts",
                        "fts_pk": "rowid",
                        "columns": COLUMNS["pdf_texts"],
                    },
                    "revisions": {
                        "description": "Earlier versions of edited articles.",
                        "columns": COLUMNS["revisions"],
                    },
                    "article_sections": {"description": "Which lists each article is on."},
                    "runs": {"description": "One row per crawl."},
                    "run_errors": {"description": "Requests that failed, and PDF warnings."},
                    **tables,
                },
                "queries": QUERIES,
            }
        },
        "plugins": {"npi-crawler": {"show_deliveries": show_deliveries}},
    }


def serve(
    db_path: str, *, host: str = "127.0.0.1", port: int = 8001, show_deliveries: bool = False, echo=print
) -> None:
    """Run Datasette on the archive until interrupted. ``port`` 0 picks a free port; the URL is
    printed (through ``echo``) once the socket is listening."""
    try:
        import uvicorn
        from datasette.app import Datasette
        from datasette.plugins import pm

        from npi_crawler.research import datasette_plugin
    except ImportError:
        raise ArchiveError(
            "Datasette is not installed; install it with: pip install 'npi-crawler[serve]'"
        ) from None
    Archive.open(db_path, readonly=True).close()  # a bad --db is one line, before the server starts
    if not pm.is_registered(datasette_plugin):  # run from a source tree: no entry point installed
        pm.register(datasette_plugin, name="npi_crawler")
    ds = Datasette(
        [db_path],
        metadata=metadata(db_path, show_deliveries=show_deliveries),
        settings={"default_page_size": 50, "sql_time_limit_ms": 3000, "truncate_cells_html": 200},
    )
    import asyncio

    asyncio.run(ds.invoke_startup())
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        raise ArchiveError(
            f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port"
        ) from None
    sock.listen(128)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    echo(f"Serving {db_path} at http://{shown}:{bound}/{Path(db_path).stem} (Ctrl-C to stop)")
    config = uvicorn.Config(ds.app(), log_level="warning", lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])
