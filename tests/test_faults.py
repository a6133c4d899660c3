"""The fault suite: crawls through the real CLI against a replica that misbehaves on purpose.

Every test checks what a crawl must do whatever the server does: finish, store every article it
could read (exactly as the oracle says), retry what is retryable, record the rest as errors of the
run, never store mojibake, never request anything off the site, and never mark an article removed
because of a transient error. Settings keep each crawl to a few seconds (2 retries, 2 s timeout).
"""

from __future__ import annotations

import json
import re
import sqlite3

import pytest

from tests.conftest import crawl as run_crawl
from tests.conftest import export_rows
from tests.site import ReplicaServer, Site, generate_site

# The fault suite runs the command watchers schedule: watch = crawl, then diff and deliver.
COMMAND = "watch"
FAST = ("-s", "RETRY_TIMES=2", "-s", "DOWNLOAD_TIMEOUT=1")
ATTEMPTS = 3  # one request plus RETRY_TIMES retries


@pytest.fixture
def small_site() -> Site:
    return generate_site(seed=7, n_articles=24, per_page=2)


@pytest.fixture
def replica(small_site: Site):
    with ReplicaServer(small_site) as server:
        yield server


@pytest.fixture
def offsite():
    """Another host on loopback that is not the site: a redirect target that must never be
    contacted. 127.0.0.2 is loopback on Linux and a different host name from 127.0.0.1."""
    with ReplicaServer(generate_site(seed=2, n_articles=8), host="127.0.0.2") as server:
        yield server


# The rolling sweep off where a test counts the articles a run asks (tests/test_sweep.py covers it).
NO_SWEEP = ("--sweep-lists", "0", "--sweep-articles", "0")


def crawl(replica: ReplicaServer, db_path: str, *extra: str):
    return run_crawl(replica, db_path, *FAST, *extra, command=COMMAND)


def query(db_path: str, sql: str, params=()) -> list[tuple]:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def last_run(db_path: str) -> dict:
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        return dict(conn.execute("SELECT * FROM runs ORDER BY id DESC LIMIT 1").fetchone())
    finally:
        conn.close()


def run_errors(db_path: str, *, pdf_warnings: bool = False) -> dict[str, str]:
    """url -> kind of the last run's errors. PDF warnings (``pdf:*``: the replica serves one
    broken PDF on purpose) are left out unless asked for."""
    sql = "SELECT url, kind FROM run_errors WHERE run_id = (SELECT max(id) FROM runs)"
    return {url: kind for url, kind in query(db_path, sql) if pdf_warnings or not kind.startswith("pdf:")}


def expected_without(site: Site, replica: ReplicaServer, *paths: str) -> list[dict]:
    urls = {replica.url.rstrip("/") + p for p in paths}
    return [row for row in site.expected_export(replica.url) if row["url"] not in urls]


def requests_for(replica: ReplicaServer, path: str) -> int:
    return sum(1 for _m, p, _s, _h in replica.log if p == path)


def first_page_article(site: Site) -> str:
    """A Japanese article (the text that mojibake would spoil) on a list's first page."""
    return site.list_pages("ja", "diplomacy")[0][0].path


def later_page_article(site: Site) -> str:
    """An article on no list's first page: an incremental run stops before reaching it."""
    first_pages = {
        a.path for lang in ("ja", "en") for s in _sections(site) for a in site.list_pages(lang, s)[0]
    }
    return next(a.path for a in sorted(site.live(), key=lambda a: a.path) if a.path not in first_pages)


def _sections(site: Site) -> tuple[str, ...]:
    from tests.site import SECTIONS

    return SECTIONS


# -- retryable faults: transient ones succeed on retry, permanent ones are errors ------------------

RETRYABLE = [
    ("status", {"status": 503}),
    ("status", {"status": 500}),
    ("429", {"retry_after": None}),  # without Retry-After: retried as any 5xx (with it: test_retry_after.py)
    ("hang", {"seconds": 3}),
    ("truncate", {}),
    ("drop", {}),
]


def targets(site: Site, n: int) -> list[str]:
    """``n`` distinct articles, Japanese ones on first pages first (mojibake would show there)."""
    ordered = sorted(site.live(), key=lambda a: (a.lang != "ja", a.path))
    return [a.path for a in ordered[:n]]


def test_transient_faults_are_retried_and_every_article_stored(small_site, replica, db_path):
    """One article per fault kind fails on its first request only: all are stored."""
    paths = targets(small_site, len(RETRYABLE))
    for path, (kind, options) in zip(paths, RETRYABLE, strict=True):
        replica.add_fault(path, kind, times=1, **options)
    crawl(replica, db_path)
    for path, (kind, _options) in zip(paths, RETRYABLE, strict=True):
        assert requests_for(replica, path) == 2, kind
    assert export_rows(db_path) == small_site.expected_export(replica.url)
    run = last_run(db_path)
    assert run["status"] == "ok" and run["errors"] == 0
    assert run_errors(db_path) == {}


def test_permanent_faults_are_errors_of_the_run_and_the_rest_is_stored(small_site, replica, db_path):
    faults = [*RETRYABLE, ("status", {"status": 404})]
    expected_kinds = [
        "article:http_503",
        "article:http_500",
        "article:http_429",
        "article:DownloadTimeoutError",
        "article:ResponseDataLossError",
        "article:DownloadFailedError",
        "article:http_404",
    ]
    paths = targets(small_site, len(faults))
    for path, (kind, options) in zip(paths, faults, strict=True):
        replica.add_fault(path, kind, **options)
    crawl(replica, db_path)
    base = replica.url.rstrip("/")
    assert run_errors(db_path) == {base + p: k for p, k in zip(paths, expected_kinds, strict=True)}
    assert last_run(db_path)["errors"] == len(faults)
    assert export_rows(db_path) == expected_without(small_site, replica, *paths)
    # retried: once plus RETRY_TIMES (Twisted's HTTP client may retry a dropped idempotent
    # request once more on its own); a 404 is not retried
    for path, (kind, _options) in zip(paths[:-1], faults[:-1], strict=True):
        assert ATTEMPTS <= requests_for(replica, path) <= 2 * ATTEMPTS, kind
    assert requests_for(replica, paths[-1]) == 1


def test_failed_list_page_makes_the_run_partial_and_the_next_run_walks_it(small_site, replica, db_path):
    replica.add_fault("/en/research/policy/index.html", "status", status=503)
    crawl(replica, db_path)
    run = last_run(db_path)
    assert run["status"] == "partial"
    assert "list:http_503" in run_errors(db_path).values()
    replica.clear_faults()
    crawl(replica, db_path)
    assert last_run(db_path)["status"] == "ok"
    assert export_rows(db_path) == small_site.expected_export(replica.url)


def test_article_that_failed_is_fetched_by_the_next_incremental_run(small_site, replica, db_path):
    """An article on page 2 that failed: the next run stops at page 1 (nothing new there), yet
    the article is listed and not archived, so it is fetched again (and only it)."""
    target = later_page_article(small_site)
    replica.add_fault(target, "status", status=503)
    crawl(replica, db_path)
    assert last_run(db_path)["status"] == "ok"
    replica.clear_faults()
    mark = len(replica.log)
    crawl(replica, db_path, *NO_SWEEP)
    assert export_rows(db_path) == small_site.expected_export(replica.url)
    articles = [p for _m, p, _s, _h in replica.log[mark:] if "/research/2" in p]
    assert articles == [target]


def test_random_transient_faults_with_a_seed_lose_nothing(small_site, replica, db_path):
    paths = [a.path for a in small_site.live()] + [
        f"{prefix}/research/{s}/index.html" for prefix in ("", "/en") for s in _sections(small_site)
    ]
    # a 429 without Retry-After: one with it stops the run (test_retry_after.py)
    faults = replica.random_faults(paths, seed=5, rate=0.4, times=1, retry_after=None)
    assert len(faults) >= 5
    crawl(replica, db_path)
    assert export_rows(db_path) == small_site.expected_export(replica.url)
    assert last_run(db_path)["status"] == "ok"
    assert all(fault.hits == 1 for fault in faults)


# -- size caps ----------------------------------------------------------------------------------


@pytest.mark.parametrize("declare_length", [True, False], ids=["content-length", "streamed"])
def test_oversized_response_is_cut_off_and_recorded(declare_length, small_site, replica, db_path):
    target = first_page_article(small_site)
    replica.add_fault(target, "oversize", size=3_000_000, declare_length=declare_length)
    crawl(replica, db_path, "-s", "DOWNLOAD_MAXSIZE=500000", "-s", "DOWNLOAD_WARNSIZE=0")
    assert export_rows(db_path) == expected_without(small_site, replica, target)
    errors = run_errors(db_path)
    assert list(errors) == [replica.url.rstrip("/") + target]
    assert query(db_path, "SELECT max(length(body)) FROM articles")[0][0] < 100_000


# -- encodings and markup -------------------------------------------------------------------------

ENCODINGS = [
    pytest.param(
        enc, header, meta, id=f"{enc}-{'header' if header else 'noheader'}-{'meta' if meta else 'nometa'}"
    )
    for enc in ("shift_jis", "euc_jp")
    for header in (True, False)
    for meta in (True, False)
]


@pytest.mark.parametrize("encoding,header,meta", ENCODINGS)
def test_legacy_japanese_encodings_are_stored_without_mojibake(
    encoding, header, meta, small_site, replica, db_path
):
    replica.add_fault("*.html", "encoding", encoding=encoding, header=header, meta=meta)
    crawl(replica, db_path)
    assert export_rows(db_path) == small_site.expected_export(replica.url)
    bodies = "".join(r[0] for r in query(db_path, "SELECT title || body FROM articles"))
    assert "\ufffd" not in bodies and "検討した" in bodies


def test_broken_html_still_gives_the_exact_articles(small_site, replica, db_path):
    replica.add_fault("*.html", "broken_html")
    crawl(replica, db_path)
    assert export_rows(db_path) == small_site.expected_export(replica.url)
    assert last_run(db_path)["status"] == "ok"


def test_page_without_an_article_is_recorded_as_an_error(small_site, replica, db_path):
    target = first_page_article(small_site)
    replica.add_fault(target, "status", status=200)  # a 200 page with no heading, no title
    crawl(replica, db_path)
    assert export_rows(db_path) == expected_without(small_site, replica, target)
    assert run_errors(db_path) == {replica.url.rstrip("/") + target: "article:dropped/no_title"}


# -- never off the site ---------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["article", "list", "robots", "pdf"])
def test_redirect_off_the_site_is_not_followed(which, small_site, replica, offsite, db_path):
    """Whatever is redirected (an article, a list page, robots.txt, a PDF) to another host."""
    path = {
        "article": first_page_article(small_site),
        "list": "/research/diplomacy/index.html",
        "robots": "/robots.txt",
        "pdf": next(p for a in sorted(small_site.live(), key=lambda a: a.path) for p in a.pdfs),
    }[which]
    replica.add_fault(path, "redirect", location=offsite.url + path.lstrip("/"))
    crawl(replica, db_path)
    assert offsite.log == []
    if which == "article":
        assert export_rows(db_path) == expected_without(small_site, replica, path)
        assert run_errors(db_path) == {replica.url.rstrip("/") + path: "article:OffsiteRedirect"}
    if which == "pdf":
        assert run_errors(db_path, pdf_warnings=True)[replica.url.rstrip("/") + path].startswith("pdf:")


def test_links_to_another_host_are_not_requested(small_site, replica, offsite, db_path):
    """A list that links to an article on another host (absolute URL): not requested."""
    from tests.site import render

    original = render.render_list

    def with_offsite_link(site, lang, section, page):
        out = original(site, lang, section, page)
        if out is None or page != 1:
            return out
        link = f'<div class="box"><p><a href="{offsite.url}research/2020/01/01000000.html">x</a></p></div>'
        out.body = out.body.replace(
            b'<div class="entry_list_area">', b'<div class="entry_list_area">' + link.encode(), 1
        )
        return out

    render.render_list = with_offsite_link
    try:
        crawl(replica, db_path)
    finally:
        render.render_list = original
    assert offsite.log == []
    assert export_rows(db_path) == small_site.expected_export(replica.url)


# -- transient errors never remove an article ---------------------------------------------------


def test_full_run_with_faults_on_known_articles_removes_nothing(small_site, replica, db_path):
    """Only an article's own 404/410 removes it; errors, timeouts and cut bodies never do."""
    crawl(replica, db_path)
    before = export_rows(db_path)
    paths = targets(small_site, len(RETRYABLE))
    for path, (kind, options) in zip(paths, RETRYABLE, strict=True):
        replica.add_fault(path, kind, **options)
    crawl(replica, db_path, "--full")
    assert query(db_path, "SELECT count(*) FROM articles WHERE removed_at IS NOT NULL") == [(0,)]
    assert export_rows(db_path) == before
    assert len(run_errors(db_path)) == len(paths)
    assert last_run(db_path)["articles_removed"] == 0


SHORT_PAGES = [
    "「半導体と宇宙」研究会報告",
    "経済安全保障をめぐる半導体と宇宙の課題について検討した。",
    "憲法改正",  # kanji only
    "中曽根康弘世界平和研究所",
]


@pytest.mark.parametrize("encoding", ["shift_jis", "euc_jp", "utf-8"])
@pytest.mark.parametrize("text", SHORT_PAGES)
def test_short_undeclared_japanese_page_is_decoded_exactly(text, encoding):
    """Scrapy's general detector (charset-normalizer) reads short EUC-JP and some Shift_JIS as
    Korean cp949; the spider tries UTF-8 and the Japanese encodings first."""
    from scrapy.http import HtmlResponse

    from npi_crawler.site.articles import parse_article
    from npi_crawler.spiders.common import page_text

    html = (
        '<html><body><div id="main"><h3 class="ttl_second b30"><div class="date">2024/01/05</div>'
        f'<div>{text}</div></h3><div class="detail_area"><div class="b0"><p>{text}</p></div></div>'
        "</div></body></html>"
    )
    url = "https://npi.or.jp/research/2024/01/05000000.html"
    response = HtmlResponse(url, body=html.encode(encoding), headers={"Content-Type": "text/html"})
    parsed = parse_article(page_text(response), url)
    assert (parsed.title, parsed.body) == (text, text)


# -- redirects that go nowhere ------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["to_itself", "loop", "too_many"])
def test_redirect_loop_or_too_many_redirects_is_an_error_of_the_run(shape, small_site, replica, db_path):
    """A page that never arrives because its redirects go round or on and on is recorded under
    its own (listed) URL; Scrapy alone drops a loop silently (its dupefilter) ."""
    target = first_page_article(small_site)
    base = replica.url
    hops = {
        "to_itself": [target],
        "loop": ["/loop/b.html", target],
        "too_many": [f"/hop/{i}.html" for i in range(1, 8)],  # REDIRECT_MAX_TIMES is 5
    }[shape]
    for source, location in zip([target, *hops], hops, strict=False):
        replica.add_fault(source, "redirect", location=base + location.lstrip("/"))
    crawl(replica, db_path)
    assert export_rows(db_path) == expected_without(small_site, replica, target)
    kind = {"too_many": "article:TooManyRedirects"}.get(shape, "article:RedirectLoop")
    assert run_errors(db_path) == {base.rstrip("/") + target: kind}
    assert last_run(db_path)["errors"] == 1


# -- hostile pages ------------------------------------------------------------------------------

DIPLOMACY = "/research/diplomacy/index.html"


def insert_after(marker: str, html: str):
    """A ``rewrite`` fault's options: ``html`` inserted right after the first ``marker``."""
    return {"find": re.escape(marker), "repl": lambda m: m[0] + html, "count": 1}


def test_malformed_first_entry_is_an_error_of_the_run_and_the_rest_of_the_list_is_read(
    small_site, replica, db_path
):
    """The first entry of a list has a port out of range, the next an IPv6 host (off the site),
    then unbalanced brackets; the pager has a bad link too. Every article is still stored."""
    bad = [
        "http://npi.or.jp:99999/research/2020/01/01000000.html",
        "http://[::1]/research/2020/01/01000001.html",
        "http://[bad/research/2020/01/01000002.html",
    ]
    entries = "".join(f'<div class="box"><p><a href="{href}">x</a></p></div>' for href in bad)
    replica.add_fault(DIPLOMACY, "rewrite", **insert_after('<div class="entry_list">\n', entries))
    pager = '<a class="link_page" href="http://npi.or.jp:65536/research/diplomacy/index_9.html">9</a>'
    replica.add_fault("/research/diplomacy/index_2.html", "rewrite", **insert_after('"pagination">', pager))
    run_crawl(replica, db_path, *FAST)
    assert export_rows(db_path) == small_site.expected_export(replica.url)
    base = replica.url.rstrip("/")
    rows = query(db_path, "SELECT url, kind, message FROM run_errors WHERE kind NOT LIKE 'pdf:%' ORDER BY id")
    assert [(url, kind) for url, kind, _m in rows] == [
        (base + DIPLOMACY, "list:bad_link"),
        (base + DIPLOMACY, "list:bad_link"),
        (base + "/research/diplomacy/index_2.html", "list:bad_link"),
    ]
    assert ":99999/" in rows[0][2] and "[bad/" in rows[1][2] and ":65536/" in rows[2][2]
    run = last_run(db_path)
    assert run["status"] == "ok" and run["errors"] == 3
    assert json.loads(run["stats"])["npi/list/bad_links"] == 3


def test_article_with_an_empty_heading_and_a_100_kb_title_is_archived(small_site, replica, db_path):
    """The <title> fallback on 100 KB of "- " (quadratic before: minutes) is read at once and
    stored cut to TITLE_MAX_CHARS."""
    from npi_crawler.site.articles import TITLE_MAX_CHARS

    target = first_page_article(small_site)

    def hostile(page: str) -> str:
        page = re.sub(r"<title>.*?</title>", "<title>" + "- " * 51_200 + "</title>", page, count=1)
        page = re.sub(r'<meta property="og:title"[^>]*>', "", page)
        return re.sub(
            r'(?s)(<h3 class="ttl_second b30">(?:<div class="date">[^<]*</div>)?<div>).*?(</div></h3>)',
            r"\1\2",
            page,
            count=1,
        )

    replica.add_fault(target, "rewrite", find=r"(?s)\A.*\Z", repl=lambda m: hostile(m[0]), count=1)
    crawl(replica, db_path)
    title = ("- " * TITLE_MAX_CHARS)[: TITLE_MAX_CHARS - 1] + "…"
    url = replica.url.rstrip("/") + target
    expected = [
        {**row, "title": title} if row["url"] == url else row
        for row in small_site.expected_export(replica.url)
    ]
    assert export_rows(db_path) == expected
    stats = json.loads(last_run(db_path)["stats"])
    assert stats["npi/parse/fallback/title_tag"] == 1 and stats["npi/parse/cap/title"] == 1


ROBOTS_DISALLOWED = [
    "/research/diplomacy/",
    "/research/economy/",
    "/research/technology/",
    "/en/research/policy/",
]
# The concurrency of the live settings (settings.py) and of a loopback replica (crawl.build_settings).
CONCURRENCY = {
    "live": ("-s", "CONCURRENT_REQUESTS=4", "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=2"),
    "loopback": (),
}


@pytest.mark.parametrize("concurrency", sorted(CONCURRENCY))
def test_lists_disallowed_by_robots_txt_get_no_request_at_the_default_concurrency(
    concurrency, small_site, db_path
):
    """Requests that wait for robots.txt while it downloads are checked too (Scrapy 2.19 on the
    asyncio reactor let all but the first through: 1 list page here at 4 requests at a time, 3 at
    16). Several lists are disallowed so that some of them are among those waiting."""
    small_site.robots = "User-agent: *\n" + "".join(f"Disallow: {path}\n" for path in ROBOTS_DISALLOWED)
    with ReplicaServer(small_site) as replica:
        crawl(replica, db_path, *CONCURRENCY[concurrency])
        requested = replica.paths()
    assert [p for p in requested if p.startswith(tuple(ROBOTS_DISALLOWED))] == []
    assert "/research/industry/index.html" in requested and "/en/research/diplomacy/index.html" in requested
    run = last_run(db_path)
    stats = json.loads(run["stats"])
    assert stats["robotstxt/forbidden"] == stats["npi/list/robots_forbidden"] == len(ROBOTS_DISALLOWED)
    # an error of the run to look at, but not a failed list page: the next run does not walk every page
    assert run["status"] == "ok" and set(run_errors(db_path).values()) == {"list:RobotsForbidden"}


def test_new_articles_past_the_cap_wait_for_the_next_runs_and_none_is_lost(small_site, replica, db_path):
    """NPI_MAX_NEW_ARTICLES=10 on a site of 24: each run fetches 10 new articles at most, says so
    in one run_errors row, and the next runs fetch the rest (listed, not yet archived)."""
    cap = ("-s", "NPI_MAX_NEW_ARTICLES=10", *NO_SWEEP)  # the cap is on new articles; no re-check beside them
    stored = []
    for _run in range(3):
        mark = len(replica.log)
        crawl(replica, db_path, *cap)
        articles = [p for p in replica.paths()[mark:] if "/research/2" in p]
        assert len(articles) <= 10
        stored.append(query(db_path, "SELECT count(*) FROM articles")[0][0])
        assert list(run_errors(db_path).values()) == (
            ["run:max_new_articles"] if stored[-1] < len(small_site.live()) else []
        )
    assert stored == [10, 20, 24]
    assert export_rows(db_path) == small_site.expected_export(replica.url)
    assert json.loads(last_run(db_path)["stats"]).get("npi/article/over_cap") is None


HUGE = 200 * 1024 * 1024


@pytest.mark.parametrize(
    "kind,options,error,words",
    [
        ("oversize", {"size": HUGE, "declare_length": True}, "DownloadCancelledError", "(20971520)"),
        # Scrapy cancels a streamed body past the cap without a message
        ("oversize", {"size": HUGE, "declare_length": False}, "DownloadCancelledError", ""),
        ("gzip_bomb", {"size": HUGE}, "IgnoreRequest", "exceeded DOWNLOAD_MAXSIZE"),
    ],
    ids=["200MB-content-length", "200MB-streamed", "gzip-bomb-200MB"],
)
def test_huge_answers_are_cut_at_the_default_download_maxsize(
    kind, options, error, words, small_site, replica, db_path
):
    """At the shipped DOWNLOAD_MAXSIZE (20 MiB): a 200 MB page, announced or streamed, and 200 KB
    of gzip that inflates to 200 MB are errors of the run; the rest of the site is stored."""
    target = first_page_article(small_site)
    replica.add_fault(target, kind, **options)
    crawl(replica, db_path)
    assert export_rows(db_path) == expected_without(small_site, replica, target)
    sql = "SELECT url, kind, message FROM run_errors WHERE kind NOT LIKE 'pdf:%'"
    [(url, recorded, message)] = query(db_path, sql)
    assert (url, recorded) == (replica.url.rstrip("/") + target, f"article:{error}")
    assert words in message


def hostile_hrefs(replica: ReplicaServer, offsite: ReplicaServer) -> tuple[list[str], list[str]]:
    """(links to another host in the spellings URL parsers disagree on, links that stay on the
    site or go nowhere: traversal, encoded slashes, other schemes)."""
    rport, oport = replica.url.split(":")[2].strip("/"), offsite.url.split(":")[2].strip("/")
    article = "research/2020/01/01000000.html"
    off = [
        f"{offsite.url}{article}",
        f"//127.0.0.2:{oport}/{article}",
        f"HTTP://127.0.0.2:{oport}/{article}",
        f"http://127.0.0.1:{rport}@127.0.0.2:{oport}/{article}",
        f"http://127.0.0.1:{rport}\\@127.0.0.2:{oport}/{article}",
        f"http://127.0.0.2.:{oport}/{article}",
        f"http://2130706434:{oport}/{article}",
        f"http://0x7f000002:{oport}/{article}",
        f"http://[::ffff:127.0.0.2]:{oport}/{article}",
        f"http://localhost:{oport}/{article}",
        "http://169.254.169.254/latest/meta-data/iam/x.html",
        "http://[fe80::1]/x.html",
    ]
    nowhere = [
        "../../../../etc/passwd",
        "/research/%2F..%2F..%2Fetc%2Fpasswd.html",
        "..%2F..%2Fetc%2Fpasswd.html",
        f"javascript:fetch('//127.0.0.2:{oport}/')",
        "file:///etc/passwd",
        "file://127.0.0.2/etc/passwd.html",
    ]
    return off, nowhere


def test_hostile_hrefs_on_lists_pagers_and_pdf_buttons_never_reach_another_host(
    small_site, replica, offsite, db_path
):
    import html

    off, nowhere = hostile_hrefs(replica, offsite)
    links = [html.escape(h) for h in off + nowhere]
    entries = "".join(f'<div class="box"><p><a href="{h}">x</a></p></div>' for h in links)
    replica.add_fault(DIPLOMACY, "rewrite", **insert_after('<div class="entry_list">\n', entries))
    pager = "".join(f'<a class="link_page" href="{h}">99</a>' for h in links)
    replica.add_fault("/research/industry/index.html", "rewrite", **insert_after('"pagination">', pager))
    target = first_page_article(small_site)
    buttons = "".join(f'<p><a class="btn_pdf" href="{h}.pdf">PDF</a></p>' for h in links)
    replica.add_fault(target, "rewrite", **insert_after('<div class="detail_area">', buttons))
    crawl(replica, db_path)
    assert offsite.log == []
    base = replica.url.rstrip("/")
    # nothing was attempted off the site: no timeout or refused connection to another host
    assert [url for url in run_errors(db_path) if not url.startswith(base + "/")] == []
    assert json.loads(last_run(db_path)["stats"])["offsite/filtered"] >= 1
    # the article keeps its real PDFs (the hostile ones are stored as links, never requested)
    [row] = [r for r in export_rows(db_path) if r["url"] == base + target]
    expected = next(r for r in small_site.expected_export(replica.url) if r["url"] == base + target)
    assert set(expected["pdfs"]) <= set(row["pdfs"]) and row["body"] == expected["body"]
    stored = {r["url"] for r in export_rows(db_path)}
    assert stored == {r["url"] for r in small_site.expected_export(replica.url)}
