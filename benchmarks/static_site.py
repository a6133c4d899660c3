"""The replica rendered to static files, for a real web server to serve (``benchmarks/crawl.py``).

Every page a full crawl asks for (robots.txt, every list page, every live article and every PDF
they link) is written under one folder at its URL path, so a web server rooted there answers the
same URLs as ``tests.site.ReplicaServer``. Articles and PDFs get the replica's Last-Modified as
their file time, so the server's own ETag and Last-Modified change when the replica's would.
"""

from __future__ import annotations

import copy
import functools
import os
from email.utils import parsedate_to_datetime
from pathlib import Path

from tests.site import SECTIONS, Site
from tests.site.render import list_page_url, render

# Any fixed time will do for pages the replica gives no Last-Modified (robots.txt, lists).
LIST_MTIME = 1_700_000_000


def crawl_paths(site: Site) -> list[str]:
    """Every path a full crawl of ``site`` requests, each once: what the static copy holds."""
    paths = ["/robots.txt"]
    for lang in ("ja", "en"):
        for section in SECTIONS:
            paths += [list_page_url(lang, section, i + 1) for i in range(len(site.list_pages(lang, section)))]
    live = site.live()
    paths += [a.path for a in live]
    paths += list(dict.fromkeys(pdf for a in live for pdf in a.pdfs))
    return paths


def _frozen(site: Site) -> Site:
    """A copy that computes each list once: every article page shows the newest entries of its
    sections, and recomputing them per page makes rendering 5,000 articles quadratic."""
    frozen = copy.copy(site)
    frozen.list_entries = functools.cache(site.list_entries)  # type: ignore[method-assign]
    return frozen


def write_static_site(site: Site, root: Path) -> list[str]:
    """Render every crawled page of ``site`` into ``root`` (world-readable, for the server's
    unprivileged workers); returns the paths, in the order of ``crawl_paths``."""
    frozen = _frozen(site)
    paths = crawl_paths(site)
    for path in paths:
        page = render(frozen, path)
        if page.status != 200:
            raise RuntimeError(f"the replica does not serve {path} ({page.status})")
        file = root / path.lstrip("/")
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(page.body)
        mtime = parsedate_to_datetime(page.last_modified).timestamp() if page.last_modified else LIST_MTIME
        os.utime(file, (mtime, mtime))
    for folder, _dirs, files in os.walk(root):
        os.chmod(folder, 0o755)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o644)
    return paths
