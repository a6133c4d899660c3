"""Serve the bundled replica so the crawler can be tried offline.

python -m tests.site [--port 8000] [--seed 1] [--articles 48]
"""

from __future__ import annotations

import argparse
import time

from .model import generate_site
from .server import ReplicaServer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--articles", type=int, default=60)
    parser.add_argument("--per-page", type=int, default=3)
    args = parser.parse_args()
    site = generate_site(seed=args.seed, n_articles=args.articles, per_page=args.per_page)
    with ReplicaServer(site, port=args.port) as replica:
        print(f"replica of npi.or.jp ({len(site.articles)} articles) at {replica.url}", flush=True)
        print(f"try: npi-crawler crawl --base-url {replica.url} --db replica.db", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
