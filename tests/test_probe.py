"""`npi-crawler probe`: one page of the replica over real HTTP (or a saved page), every field
with the selector that found it; exit 3 naming the required key that no selector found."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner

from npi_crawler.cli import cli
from npi_crawler.constants import user_agent
from tests.site.render import REDESIGN_SELECTORS
from tests.test_cli import free_port

PAGES = Path(__file__).parent / "pages"


def probe(*args: str, env: dict | None = None):
    return CliRunner().invoke(cli, ["probe", *args], env={"NPI_CONTACT": None, **(env or {})})


def first_article(site, **wanted):
    return next(a for a in sorted(site.live(), key=lambda a: a.path) if all(getattr(a, k) for k in wanted))


def field_lines(output: str) -> dict[str, tuple[str, str]]:
    """key -> (value, source line) from probe's report."""
    lines = output.splitlines()
    out = {}
    for i, line in enumerate(lines[:-1]):
        if line.startswith("  ") and not line.startswith("   ") and lines[i + 1].startswith("   "):
            key, _, value = line.strip().partition(" ")
            out[key] = (value.strip(), lines[i + 1].strip())
    return out


def test_an_article_shows_title_date_and_body_with_their_selectors(replica, site):
    article = first_article(site, authors=True, pdfs=True, show_date=True)
    result = probe(replica.url + article.path.lstrip("/"), env={"NPI_CONTACT": "ops@example.org"})
    assert result.exit_code == 0, result.output
    fields = field_lines(result.stdout)
    assert fields["title"] == (" ".join(article.title.split()), "from 'h3.ttl_second'")
    assert fields["date"] == (article.published, "from 'h3.ttl_second .date'")
    body_start = article.expected_body()[:40]
    assert body_start in fields["body"][0] and fields["body"][1] == "from '#main > div.detail_area'"
    assert fields["author_name"][0] == ", ".join(name for name, _ in article.authors)
    assert "required     article, title, date, body: all found" in result.stdout
    # fetched as a crawl fetches: robots.txt first, the crawl's User-Agent with the contact
    assert replica.paths()[:2] == ["/robots.txt", article.path]
    assert {h["User-Agent"] for _m, _p, _s, h in replica.log} == {user_agent("ops@example.org")}


def test_a_title_selector_that_misses_exits_3_naming_the_key(replica, site):
    article = first_article(site, show_date=True)
    replica.add_fault(article.path, "rewrite", find="ttl_second", repl="headline")
    result = probe(replica.url + article.path.lstrip("/"))
    assert result.exit_code == 3, result.output
    fields = field_lines(result.stdout)
    # the fallback still reads the title; the report says it was not the profile's selector
    assert fields["title"][0] == " ".join(article.title.split())
    assert fields["title"][1] == (
        "MISS: no selector of 'title' matched (tried 'h3.ttl_second'); fallback/title_og gave the value"
    )
    assert fields["body"][1].startswith("from ")
    assert "nomatch/title, fallback/title_og" in result.stdout
    error = result.stderr.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("Error: required key(s) title, date: no selector matched")
    assert "[selectors]" in error[0]


def test_the_settings_file_s_selectors_fix_the_miss(replica, site, tmp_path):
    article = first_article(site, show_date=True)
    replica.add_fault(article.path, "rewrite", find="ttl_second", repl="headline")
    settings = tmp_path / "npi-crawler.toml"
    settings.write_text('[selectors]\ntitle = ["h3.headline"]\ndate = ["h3.headline .date"]\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["--settings", str(settings), "probe", replica.url + article.path.lstrip("/")])
    assert result.exit_code == 0, result.output
    assert field_lines(result.stdout)["title"] == (" ".join(article.title.split()), "from 'h3.headline'")


def test_a_list_page_shows_its_entries_and_pagination(replica, site):
    pages = site.list_pages("en", "policy")
    result = probe(replica.url + "en/research/policy/index.html")
    assert result.exit_code == 0, result.output
    fields = field_lines(result.stdout)
    assert fields["list_entry"][0] == f"{len(pages[0])} entries"
    assert fields["pagination"][0].startswith(f"{len(pages) - 1} link(s); next page: {replica.url}en/research/policy/index_2.html")
    for article in pages[0]:
        assert f"entry  {replica.url}{article.path.lstrip('/')}" in result.stdout


def test_a_redesigned_list_page_misses_until_the_selectors_name_its_markup(replica, site, tmp_path):
    site.layout = "redesign"
    url = replica.url + "research/policy/index.html"
    plain = probe(url)
    assert plain.exit_code == 3 and "required key(s) list_entry" in plain.stderr
    settings = tmp_path / "s.toml"
    table = "\n".join(f"{k} = {v!r}".replace("'", '"') for k, v in REDESIGN_SELECTORS.items())
    settings.write_text(f"[selectors]\n{table}\n", encoding="utf-8")
    fixed = CliRunner().invoke(cli, ["--settings", str(settings), "probe", url])
    assert fixed.exit_code == 0, fixed.output
    assert field_lines(fixed.stdout)["list_entry"] == (
        f"{len(site.list_pages('ja', 'policy')[0])} entries",
        "from 'section.cards a.card__link'",
    )


def test_a_saved_page_is_probed_offline():
    page = PAGES / "ja_list_policy.html"
    result = probe("--html", str(page), "--url", "https://npi.or.jp/research/policy/index.html")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"list page https://npi.or.jp/research/policy/index.html (saved page {page})")
    article = probe("--html", str(PAGES / "en_article_report.html"), "--url", "https://npi.or.jp/en/research/2022/03/31120000.html")
    assert article.exit_code == 0, article.output
    assert "2022-03-31" in field_lines(article.stdout)["date"][0]
    # --kind overrides the guess from the URL
    as_list = probe("--html", str(PAGES / "en_article_report.html"), "--url", "https://npi.or.jp/x.html", "--kind", "list")
    assert as_list.exit_code == 3 and as_list.stdout.startswith("list page")


def test_robots_txt_is_obeyed(replica, site):
    site.robots = "User-agent: *\nDisallow: /research/\nDisallow: /en/research/\n"
    article = first_article(site)
    result = probe(replica.url + article.path.lstrip("/"))
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: the site's robots.txt disallows {replica.url}{article.path.lstrip('/')} for this crawler; the crawl would not fetch it either"
    assert article.path not in replica.paths()


@pytest.mark.parametrize(
    "args,code,fragment",
    [
        ([], 2, "give a URL to fetch, or --html FILE --url URL"),
        (["--url", "https://npi.or.jp/a.html"], 2, "--url is the address of a page given with --html"),
        (["--html", str(PAGES / "ja_list_policy.html")], 2, "give a URL to fetch, or --html FILE --url URL"),
        (["npi.or.jp/a.html"], 2, "must start with http:// or https://"),
        (["--contact", "nobody", "https://npi.or.jp/a.html"], 2, "is not a URL (https://...) or an e-mail address"),
    ],
)
def test_bad_usage_is_one_line(args, code, fragment):
    result = probe(*args)
    assert result.exit_code == code and len(result.output.strip().splitlines()) == 1 and fragment in result.output, result.output


def test_pages_that_cannot_be_had_are_one_line(replica, site, tmp_path):
    missing = probe(replica.url + "research/2099/01/01000000.html")
    assert missing.exit_code == 1 and "answered HTTP 404" in missing.output
    article = first_article(site)
    replica.add_fault(article.path, "redirect", location=f"http://localhost:{urlsplit(replica.url).port}/elsewhere.html")
    off = probe(replica.url + article.path.lstrip("/"))
    assert off.exit_code == 1 and "redirects off the site to http://localhost" in off.output
    dead = probe(f"http://127.0.0.1:{free_port()}/research/2020/01/01000000.html", "--timeout", "5")
    assert dead.exit_code == 1 and dead.output.startswith("Error: cannot fetch") and len(dead.output.splitlines()) == 1
