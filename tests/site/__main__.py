"""Serve the bundled replica offline, and publish, edit or remove its articles while it runs.

    python -m tests.site [serve] [--port 8000] [--seed 1] [--articles 60] [--per-page 3]
    python -m tests.site publish [--replica URL] [--lang ja] [--section policy] [--title T]
                                 [--date YYYY-MM-DD] [--pdfs N]
    python -m tests.site edit URL [--title T] [--append TEXT]
    python -m tests.site remove URL
    python -m tests.site sink [--port 8025]   # a local json:// channel that prints what it gets

publish, edit and remove post to the running replica's control endpoint (tests/site/control.py)
and print the article's URL; a back-dated article (--date older than the list's first page) is
filed on a deeper list page, as the site files one.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from .control import ControlError, send
from .model import SECTIONS, generate_site
from .server import ReplicaServer

DEFAULT_REPLICA = "http://127.0.0.1:8000/"
COMMANDS = ("serve", "publish", "edit", "remove", "sink")


def serve(args: argparse.Namespace) -> None:
    site = generate_site(seed=args.seed, n_articles=args.articles, per_page=args.per_page)
    with ReplicaServer(site, port=args.port) as replica:
        print(f"replica of npi.or.jp ({len(site.articles)} articles) at {replica.url}", flush=True)
        print(f"try: npi-crawler crawl --base-url {replica.url} --db replica.db", flush=True)
        print("change it: python -m tests.site publish | edit URL | remove URL", flush=True)
        _wait()


def sink(args: argparse.Namespace) -> None:
    from tests.endpoints import JsonSink  # the tests' own channel, printing what it receives

    with JsonSink(port=args.port) as channel:
        print(f"channel listening: {channel.url('alerts')}", flush=True)
        shown = 0
        while True:
            time.sleep(0.2)
            for post in channel.posts[shown:]:
                print(f"\n--- alert received ---\n{post.get('title', '')}\n{post.get('message', '')}", flush=True)
            shown = len(channel.posts)


def change(args: argparse.Namespace) -> None:
    fields = {
        "publish": lambda: {
            "lang": args.lang,
            "sections": args.section or ["policy"],
            "title": args.title,
            "date": args.date,
            "pdfs": args.pdfs,
        },
        "edit": lambda: {"url": args.url, "title": args.title, "append": args.append},
        "remove": lambda: {"url": args.url},
    }[args.command]()
    try:
        article = send(args.replica, args.command, fields)
    except ControlError as exc:
        sys.exit(f"error: {exc}")
    except OSError as exc:
        sys.exit(f"error: no replica answers at {args.replica} ({exc}); start one with: python -m tests.site --port 8000")
    print(json.dumps(article, ensure_ascii=False))


def _wait() -> None:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m tests.site", description=__doc__.splitlines()[0])
    commands = top.add_subparsers(dest="command")
    serving = commands.add_parser("serve", help="serve the replica (the default)")
    serving.add_argument("--port", type=int, default=8000)
    serving.add_argument("--seed", type=int, default=1)
    serving.add_argument("--articles", type=int, default=60)
    serving.add_argument("--per-page", type=int, default=3)
    publishing = commands.add_parser("publish", help="publish a new article on a running replica")
    publishing.add_argument("--lang", choices=("ja", "en"), default="ja")
    publishing.add_argument("--section", action="append", choices=SECTIONS, help="repeat for several (default policy)")
    publishing.add_argument("--title")
    publishing.add_argument("--date", help="YYYY-MM-DD; an older date files it on a deeper list page")
    publishing.add_argument("--pdfs", type=int, default=0, help="how many PDFs it links")
    editing = commands.add_parser("edit", help="change a live article's title or append a paragraph")
    editing.add_argument("url")
    editing.add_argument("--title")
    editing.add_argument("--append", help="a paragraph added at the end of the body")
    removing = commands.add_parser("remove", help="take an article off the site (404)")
    removing.add_argument("url")
    for sub in (publishing, editing, removing):
        sub.add_argument("--replica", default=DEFAULT_REPLICA, help=f"the replica's URL (default {DEFAULT_REPLICA})")
    listening = commands.add_parser("sink", help="a local json:// channel that prints the alerts it receives")
    listening.add_argument("--port", type=int, default=8025)
    return top


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS and argv[0] not in ("-h", "--help"):
        argv.insert(0, "serve")  # `python -m tests.site --port 8000`, as before
    args = parser().parse_args(argv)
    {"serve": serve, "sink": sink}.get(args.command, change)(args)


if __name__ == "__main__":
    main()
