"""Hard faults from outside the crawl (issue 14): bad setting values, a full disk, an archive
locked or read-only, odd archive paths, planted symlinks, slow channels and secrets in logs.

Every case runs the real CLI in its own process against the replica on 127.0.0.1, on real files
(a small tmpfs for the full disk, when the tests run as root), and checks what a user sees (one
line, the exit code), what the archive records, and that nothing stored is lost.
"""

from __future__ import annotations

import pytest

from npi_crawler.cli.scrapy_values import typed_setting
from npi_crawler.errors import SettingsError
from tests.conftest import run_cli

# -- setting values: checked once, before anything is opened or locked ----------------------------

BAD_VALUES = [
    ("DOWNLOAD_TIMEOUT", "abc", "is not a number"),
    ("DOWNLOAD_MAXSIZE", "20MB", "is not a number"),
    ("DOWNLOAD_DELAY", "inf", "out of range"),
    ("DOWNLOAD_DELAY", "nan", "out of range"),
    ("AUTOTHROTTLE_MAX_DELAY", "-5", "out of range"),
    ("NPI_PDFS", "maybe", "is not true or false"),
    ("ITEM_PIPELINES", "[1, 2]", "takes a JSON object"),
]


@pytest.mark.parametrize("source", ["-s", "[scrapy]"])
@pytest.mark.parametrize("name,value,words", BAD_VALUES, ids=[f"{n}={v}" for n, v, _w in BAD_VALUES])
def test_a_bad_setting_value_is_one_line_and_exit_2_before_anything_is_touched(
    source, name, value, words, replica, tmp_path
):
    db = tmp_path / "npi.db"
    log = tmp_path / "run.log"
    args = ["watch", "--db", str(db), "--base-url", replica.url, "--log-file", str(log)]
    if source == "-s":
        result = run_cli(*args, "-s", f"{name}={value}")
        where = f"-s {name}={value}: "
    else:
        settings = tmp_path / "s.toml"
        settings.write_text(f"[scrapy]\n{name} = {value!r}\n".replace("'", '"'), encoding="utf-8")
        result = run_cli("--settings", str(settings), *args)
        where = f"{settings}: [scrapy] '{name}': "
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"Error: {where}"), result.stderr
    assert words in result.stderr and name in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == (["s.toml"] if source == "[scrapy]" else [])
    assert replica.log == []


@pytest.mark.parametrize(
    "name,value,expected",
    [
        ("DOWNLOAD_DELAY", "0.5", 0.5),  # Scrapy's default is the int 0, read with getfloat
        ("DOWNLOAD_TIMEOUT", "7", 7),
        ("CONCURRENT_REQUESTS", 2.0, 2),
        ("AUTOTHROTTLE_MAX_DELAY", "10", 10.0),
        ("DEPTH_PRIORITY", "-1", -1),  # priorities may be negative
        ("NPI_PDFS", "false", False),
        ("TELNETCONSOLE_ENABLED", "True", True),  # a bool whose default is the int 1
        ("ITEM_PIPELINES", '{"x.Y": 1}', {"x.Y": 1}),
        ("NPI_ALLOWED_DOMAINS", "a.example,b.example", "a.example,b.example"),
        ("USER_AGENT", "me", "me"),  # text: as given
        ("MY_OWN_SETTING", "anything", "anything"),  # a name neither Scrapy nor npi-crawler knows
    ],
)
def test_good_setting_values_become_what_scrapy_reads(name, value, expected):
    assert typed_setting(name, value, "-s") == expected


def test_typed_setting_refuses_a_bool_for_a_number():
    with pytest.raises(SettingsError, match="True is not a number"):
        typed_setting("DOWNLOAD_TIMEOUT", True, "s.toml: [scrapy] 'DOWNLOAD_TIMEOUT'")
