"""Saves the replica's pages that tests/test_pages.py reads field by field: one full page per page
kind (a Japanese and an English list page, a Japanese and an English article with PDFs and
authors, an expert page), byte for byte as the replica serves them over HTTP.

Run ``python -m tests.pages.save`` after a change to the replica's markup (tests/site/render.py):
``test_the_saved_pages_are_what_the_replica_serves`` fails until then. Review the diff of the
pages and the expected values in tests/test_pages.py: they are written out by hand on purpose.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path

from tests.site import ReplicaServer, generate_site

HERE = Path(__file__).resolve().parent
SEED = 3  # a replica with a Japanese and an English article of two authors and two PDFs each
PAGES = {  # saved file -> the page's path on the site
    "replica_ja_list.html": "/research/policy/index.html",
    "replica_en_list.html": "/en/research/policy/index_2.html",
    "replica_ja_article.html": "/research/2021/06/04015159.html",
    "replica_en_article.html": "/en/research/2016/06/08060710.html",
    "replica_ja_expert.html": "/experts/cae41c.html",
}


def main() -> None:
    with ReplicaServer(generate_site(seed=SEED)) as replica:
        for name, path in PAGES.items():
            with urllib.request.urlopen(replica.url.rstrip("/") + path) as response:
                (HERE / name).write_bytes(response.read())
            print(f"{name}: {path}")


if __name__ == "__main__":
    main()
