"""The settings file: keys are the commands' own options, checked by their own types; the
documented example and key table are true; bad files are one line; flags win."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from npi_crawler import __version__
from npi_crawler.cli import cli
from npi_crawler.cli.options import output_options
from npi_crawler.cli.settings_file import (
    EVERY_COMMAND_KEYS,
    SCHEDULED,
    load_settings,
    notify_urls,
    option_keys,
)
from npi_crawler.constants import DEFAULT_CONTACT, user_agent
from npi_crawler.errors import SettingsError
from tests.conftest import ROOT, export_rows, run_cli

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DOC = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")


def documented_example() -> str:
    blocks = re.findall(r"```toml\n(.*?)```", DOC, re.S)
    assert len(blocks) == 1
    return blocks[0]


def documented_keys() -> dict[str, tuple[list[str], str]]:
    """key -> (commands it configures at the top level, example value) from the key table."""
    table = DOC[DOC.index("| key | flag | commands (top level) | example |") :].split("\n\n")[0]
    rows = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        key = cells[0].strip("`")
        if key.startswith("["):
            continue
        named = re.findall(r"`([a-z-]+)`", cells[2])
        # "every command (not `probe`...)": all but the ones named
        commands = sorted(set(cli.commands) - set(named)) if cells[2].startswith("every command") else named
        rows[key] = (commands, cells[3].split("`")[1])
    return rows


def load(tmp_path: Path, content: str):
    path = tmp_path / "s.toml"
    path.write_text(content, encoding="utf-8")
    return load_settings(str(path), cli.commands)


def test_the_documented_example_loads(tmp_path):
    settings = load(tmp_path, documented_example())
    crawl = settings.defaults["crawl"]
    assert crawl["db_path"] == "/var/lib/npi-crawler/npi.db"
    assert crawl["langs"] == ("ja", "en") and crawl["sections"] == ("policy", "industry")
    assert crawl["delay"] == 2.0 and crawl["concurrency"] == 1 and crawl["quiet"] is True
    assert settings.defaults["watch"]["digest"] is True and settings.defaults["watch"]["config"].endswith("channels.yml")
    # a top-level key configures the scheduled commands, never the readers' filters
    assert settings.defaults["export"] == {"db_path": "/var/lib/npi-crawler/npi.db", "fmt": "csv"}
    assert "langs" not in settings.defaults["search"]
    assert settings.scrapy == {"AUTOTHROTTLE_MAX_DELAY": 60, "RETRY_TIMES": 5}
    assert settings.notify_urls == ["json://127.0.0.1:8080/npi"]
    assert [(r.name, r.any, r.tags) for r in settings.rules] == [("chips", ("semiconductor", "半導体"), ("chips",))]
    assert settings.selectors["date"] == ["h3.ttl_second .date", "xpath://time/@datetime"]


def test_the_key_table_names_every_option_of_every_scheduled_command():
    derived: dict[str, list[str]] = {}
    for name, command in cli.commands.items():
        for key in option_keys(command):
            if name in SCHEDULED or key in EVERY_COMMAND_KEYS:
                derived.setdefault(key, []).append(name)
    documented = {key: sorted(commands) for key, (commands, _) in documented_keys().items()}
    assert documented == {key: sorted(commands) for key, commands in derived.items()}


@pytest.mark.parametrize("key", sorted(documented_keys()))
def test_every_documented_key_reaches_every_command_it_is_documented_for(tmp_path, key):
    commands, example = documented_keys()[key]
    value = tomllib.loads(f"v = {example}")["v"]
    settings = load(tmp_path, f"{key} = {example}\n")
    for name in commands:
        option = option_keys(cli.commands[name])[key]
        assert option.name in settings.defaults[name], (key, name)
    # and a value of the wrong kind is refused for it, naming the key
    wrong = '"x"' if isinstance(value, (bool, int, float)) and not isinstance(value, str) else "[[1]]"
    with pytest.raises(SettingsError, match=re.escape(f"'{key}'")):
        load(tmp_path, f"{key} = {wrong}\n")


@pytest.mark.parametrize(
    "content,fragment",
    [
        ('dbb = "x.db"', "unknown key 'dbb'"),
        ('lang = ["fr"]', "'lang': 'fr' is not one of 'ja', 'en'"),
        ('section = "sports"', "'section': 'sports' is not one of"),
        ("delay = -1", "'delay': -1 is not a number of seconds, 0 or more"),
        ("delay = inf", "'delay': inf is not a number of seconds"),
        ("delay = nan", "'delay': nan is not a number of seconds"),
        ('concurrency = "2"', "'concurrency'"),
        ("concurrency = 0", "'concurrency': 0 is not in the range 1<=x<=64"),
        ("concurrency = true", "'concurrency': True is not a whole number"),
        ('base_url = "npi.or.jp"', "'base_url': 'npi.or.jp' must start with http:// or https://"),
        ("quiet = 1", "'quiet': 1 must be true or false"),
        ("quiet = true\nverbose = true", "cannot both be true"),
        ("[doctor]\ndelay = 1", "[doctor] 'delay' is not an option of doctor"),
        ('[export]\nformat = "xml"', "[export] 'format': 'xml' is not one of"),
        ('[export]\nsince = "2021-13-01"', "[export] 'since': '2021-13-01' is not a date"),
        ("[scrapy]\nretry_times = 3", "[scrapy] 'retry_times' is not a Scrapy setting name"),
        ("[notify]\nurl = 'json://x'", "[notify] unknown key 'url'"),
        ('[[rule]]\nname = "a"\n', "rule 'a': no terms"),
        ('[rule]\nname = "a"\nany = ["x"]', "'rule' must be written [[rule]]"),
        ("rules = [1]", "'rules': [1] must be a single value"),
        ('db = "x.db', "is not valid TOML"),
        ("selectors = 1", "'selectors' must be a table ([selectors])"),
        ('[selectors]\ntitel = ["h1"]', "[selectors]: unknown key 'titel'; the keys are list_entry"),
        ('[selectors]\ntitle = ["h1["]', "[selectors] 'title': 'h1[' is not a valid CSS selector"),
        ('[selectors]\ndate = ["//time"]', "XPath needs the prefix 'xpath:'"),
        ('[selectors]\ndate = ["xpath://time[nosuch()]"]', "[selectors] 'date': 'xpath://time[nosuch()]' is not a valid XPath"),
        ("[selectors]\nbody = []", "[selectors] 'body': must list at least one selector"),
    ],
)
def test_a_bad_settings_file_is_one_line_naming_the_file(tmp_path, content, fragment):
    path = tmp_path / "bad.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        load_settings(str(path), cli.commands)
    assert str(path) in str(caught.value) and fragment in str(caught.value), str(caught.value)
    result = CliRunner().invoke(cli, ["--settings", str(path), "export", "--db", str(tmp_path / "a.db")])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.output
    assert not (tmp_path / "a.db").exists()


def test_a_huge_settings_file_is_refused_before_it_is_parsed(tmp_path):
    path = tmp_path / "huge.toml"
    path.write_text("# padding\n" * 200_000, encoding="utf-8")
    result = CliRunner().invoke(cli, ["--settings", str(path), "status"])
    assert result.exit_code == 2 and "larger than" in result.output


def test_missing_settings_file_is_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["--settings", str(tmp_path / "none.toml"), "export"])
    assert result.exit_code == 2
    assert result.output.strip() == f"Error: settings file {tmp_path / 'none.toml'} does not exist"


def test_db_from_the_file_and_the_flag_wins(tmp_path, monkeypatch):
    path = tmp_path / "s.toml"
    path.write_text(f'db = "{tmp_path / "from-file.db"}"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["--settings", str(path), "export"])
    assert "from-file.db does not exist" in result.output
    result = CliRunner().invoke(cli, ["--settings", str(path), "export", "--db", str(tmp_path / "flag.db")])
    assert "flag.db does not exist" in result.output
    # the environment variable and ./npi-crawler.toml name the file too
    result = CliRunner().invoke(cli, ["export"], env={"NPI_CRAWLER_SETTINGS": str(path)})
    assert "from-file.db does not exist" in result.output
    monkeypatch.chdir(tmp_path)
    Path("npi-crawler.toml").write_text('db = "cwd.db"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["export"], env={"NPI_CRAWLER_SETTINGS": None})
    assert "cwd.db does not exist" in result.output


def test_notify_urls_come_from_the_file_and_the_environment(tmp_path):
    settings = load(tmp_path, '[notify]\nurls = "json://a.example/x"\n')
    env = {"NPI_NOTIFY_URLS": "json://b.example/y, mailto://u:p@c.example\njson://a.example/x"}
    assert notify_urls(settings, env) == [
        "json://a.example/x",
        "json://b.example/y",
        "mailto://u:p@c.example",
    ]


def test_a_crawl_takes_its_settings_from_the_file_and_flags_win(tmp_path, site, replica):
    db_path = tmp_path / "npi.db"
    path = tmp_path / "npi-crawler.toml"
    path.write_text(
        f'db = "{db_path}"\n'
        # a dead base URL in the file, the replica's on the command line: the flag wins
        'base_url = "http://127.0.0.1:9/"\n'
        'lang = "en"\n'
        "[scrapy]\n"
        'USER_AGENT = "from-the-file"\n',
        encoding="utf-8",
    )
    result = run_cli("--settings", str(path), "crawl", "--base-url", replica.url)
    assert result.returncode == 0, result.stderr
    assert {h["User-Agent"] for _m, _p, _s, h in replica.log} == {"from-the-file"}
    assert all(p.startswith("/en/") or p == "/robots.txt" for p in replica.paths())
    expected = [a for a in site.expected_export(replica.url) if a["lang"] == "en"]
    assert export_rows(str(db_path)) == expected


def test_the_contact_from_the_file_is_in_every_request_s_user_agent(tmp_path, replica):
    path = tmp_path / "npi-crawler.toml"
    path.write_text('contact = "https://example.org/npi-archive"\nlang = "en"\nsection = "policy"\n', encoding="utf-8")
    result = run_cli("--settings", str(path), "crawl", "--db", str(tmp_path / "npi.db"), "--base-url", replica.url, "--no-pdfs")
    assert result.returncode == 0, result.stderr
    agents = {h["User-Agent"] for _m, _p, _s, h in replica.log}
    assert agents == {user_agent("https://example.org/npi-archive")}
    assert agents == {f"npi-crawler/{__version__} (+https://example.org/npi-archive; research archive)"}


def test_plain_scrapy_builds_the_user_agent_from_npi_contact_unless_it_is_set_by_hand():
    from scrapy.settings import Settings

    from npi_crawler.spiders.npi import NpiSpider

    def agent(**cmdline: str) -> str:
        settings = Settings()
        settings.setmodule("npi_crawler.settings", priority="project")
        for name, value in cmdline.items():
            settings.set(name, value, priority="cmdline")
        NpiSpider.update_settings(settings)
        return settings["USER_AGENT"]

    assert agent() == user_agent(DEFAULT_CONTACT)
    assert agent(NPI_CONTACT="ops@example.org") == f"npi-crawler/{__version__} (ops@example.org; research archive)"
    assert agent(NPI_CONTACT="ops@example.org", USER_AGENT="mine/1.0") == "mine/1.0"


@pytest.mark.parametrize("value", ["ops", "ftp://x.example", "a b@example.org", "ops@example.org; x", "https://x.example/(a)"])
def test_a_contact_that_is_no_url_or_address_is_refused(tmp_path, value):
    with pytest.raises(SettingsError, match=r"'contact': .* is not a URL \(https://...\) or an e-mail address"):
        load(tmp_path, f'contact = "{value}"\n')
    assert load(tmp_path, 'contact = "mailto:ops@example.org"\n').value("crawl", "contact") == "ops@example.org"


def test_the_documented_selector_keys_are_the_profile_s_keys_with_its_defaults():
    from npi_crawler.site.profile import DEFAULT_SELECTORS, KEYS

    table = DOC[DOC.index("| key | looks in | finds | default selectors |") :].split("\n\n")[0]
    documented = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        documented[cells[0].strip("`")] = tuple(re.findall(r"`([^`]+)`", cells[3]))
    assert list(documented) == list(KEYS)  # every key, in the profile's order
    assert documented == DEFAULT_SELECTORS


def test_the_selectors_table_reaches_the_crawl_as_npi_selectors(tmp_path):
    from npi_crawler.cli.runtime import META_KEY, crawl_settings

    settings = load(tmp_path, '[selectors]\ntitle = "h1.post-title"\nlist_entry = ["a.card", "xpath://li/a"]\n')
    assert settings.selectors == {"title": ["h1.post-title"], "list_entry": ["a.card", "xpath://li/a"]}
    with click.Context(cli) as ctx:
        ctx.meta[META_KEY] = settings
        assert crawl_settings(())["NPI_SELECTORS"] == settings.selectors
        # -s wins, as for any setting (JSON for a dict setting, typed like the default)
        assert crawl_settings(('NPI_SELECTORS={"title": ["h2"]}',))["NPI_SELECTORS"] == {"title": ["h2"]}
    assert load(tmp_path, "db = 'x.db'\n").selectors == {}


def test_a_flag_wins_over_quiet_or_verbose_from_the_file():
    from npi_crawler.cli.runtime import RunOutput

    seen = {}

    @click.command()
    @output_options
    def probe(quiet, verbose, log_file):
        out = RunOutput(quiet, verbose, log_file)
        seen.update(quiet=out.quiet, verbose=out.verbose)

    # default_map is how the settings file's values reach a command
    result = CliRunner().invoke(probe, [], default_map={"quiet": True})
    assert result.exit_code == 0 and seen == {"quiet": True, "verbose": False}
    result = CliRunner().invoke(probe, ["--verbose"], default_map={"quiet": True})
    assert result.exit_code == 0 and seen == {"quiet": False, "verbose": True}
    result = CliRunner().invoke(probe, ["--quiet"], default_map={"verbose": True})
    assert result.exit_code == 0 and seen == {"quiet": True, "verbose": False}
    result = CliRunner().invoke(probe, ["--verbose", "--quiet"])
    assert result.exit_code == 2 and "cannot be used together" in result.output
