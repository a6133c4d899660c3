"""The settings file: the documented example loads, bad files are one line, flags win."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from npi_crawler.cli import cli
from npi_crawler.config import COMMON_KEYS, CRAWL_KEYS, TABLES, SettingsError, load_settings, notify_urls
from npi_crawler.ops_cli import output_options
from tests.conftest import ROOT, export_rows, run_cli


def documented_example() -> str:
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```toml\n(.*?)```", text, re.S)
    assert len(blocks) == 1
    return blocks[0]


def test_the_documented_example_loads(tmp_path):
    path = tmp_path / "npi-crawler.toml"
    path.write_text(documented_example(), encoding="utf-8")
    settings = load_settings(str(path))
    assert settings.values == {
        "db": "/var/lib/npi-crawler/npi.db",
        "base_url": "https://npi.or.jp/",
        "lang": ("ja", "en"),
        "section": ("policy", "industry"),
        "delay": 2.0,
        "concurrency": 1,
        "quiet": True,
        "verbose": False,
        "log_file": "/var/log/npi-crawler/watch.log",
    }
    assert settings.scrapy == {"AUTOTHROTTLE_MAX_DELAY": 60, "RETRY_TIMES": 5}
    assert settings.notify_urls == ["json://127.0.0.1:8080/npi"]
    crawl_defaults = settings.default_map(["crawl", "export"])
    assert crawl_defaults["crawl"]["langs"] == ("ja", "en")
    assert crawl_defaults["export"] == {"db_path": "/var/lib/npi-crawler/npi.db"}


def test_every_key_is_documented_and_in_the_example():
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    table = text[text.index("| key | flag |") :]
    example = documented_example()
    for key in [*COMMON_KEYS, *CRAWL_KEYS]:
        assert f"`{key}`" in table, f"{key} is not in the key table of docs/configuration.md"
        assert re.search(rf"^{key} =", example, re.M), f"{key} is not in the documented example"
    for table_name in TABLES:
        assert f"`[{table_name}]" in table and f"[{table_name}]" in example


@pytest.mark.parametrize(
    "content,fragment",
    [
        ('dbb = "x.db"', "unknown key 'dbb'"),
        ('lang = ["fr"]', "'lang': 'fr' is not one of ja, en"),
        ('section = "sports"', "'section': 'sports' is not one of"),
        ("delay = -1", "'delay' must be a number of seconds"),
        ('concurrency = "2"', "'concurrency' must be a whole number"),
        ('base_url = "npi.or.jp"', "'base_url' must be a URL"),
        ("quiet = 1", "'quiet' must be true or false"),
        ("quiet = true\nverbose = true", "cannot both be true"),
        ("[scrapy]\nretry_times = 3", "[scrapy] 'retry_times' is not a Scrapy setting name"),
        ("[notify]\nurl = 'json://x'", "[notify] unknown key 'url'"),
        ('db = "x.db', "is not valid TOML"),
    ],
)
def test_a_bad_settings_file_is_one_line_naming_the_file(tmp_path, content, fragment):
    path = tmp_path / "bad.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        load_settings(str(path))
    assert str(path) in str(caught.value) and fragment in str(caught.value)
    result = CliRunner().invoke(cli, ["--settings", str(path), "export", "--db", str(tmp_path / "a.db")])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.output


def test_missing_settings_file_is_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["--settings", str(tmp_path / "none.toml"), "export"])
    assert result.exit_code == 1
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
    path = tmp_path / "s.toml"
    path.write_text('[notify]\nurls = "json://a.example/x"\n', encoding="utf-8")
    settings = load_settings(str(path))
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


def test_a_flag_wins_over_quiet_or_verbose_from_the_file():
    from npi_crawler.ops_cli import RunOutput

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
