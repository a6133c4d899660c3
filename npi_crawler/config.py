"""The project's settings file (TOML): the same settings as the command-line flags, flags winning.

``npi-crawler --settings FILE <command>`` (or ``NPI_CRAWLER_SETTINGS=FILE``, or ``./npi-crawler.toml``
when it exists) is read and validated before any command runs; an unknown key or a value of the
wrong kind is one line naming the file and the key. The values become the defaults of the
command's flags (click's ``default_map``), so a flag given on the command line always wins.

Secrets are not kept in the file: notification URLs (which embed tokens and passwords) also come
from the environment variable ``NPI_NOTIFY_URLS``. Every key is described in
docs/configuration.md.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from npi_crawler.parsing import LANGS, SECTIONS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SETTINGS_ENV = "NPI_CRAWLER_SETTINGS"
DEFAULT_SETTINGS_FILE = "npi-crawler.toml"
NOTIFY_URLS_ENV = "NPI_NOTIFY_URLS"

# TOML key -> the click parameter it is the default of. `db` applies to every command that has
# --db; the crawl keys to the commands that crawl (crawl, watch).
COMMON_KEYS = {"db": "db_path"}
CRAWL_KEYS = {
    "base_url": "base_url",
    "lang": "langs",
    "section": "sections",
    "delay": "delay",
    "concurrency": "concurrency",
    "quiet": "quiet",
    "verbose": "verbose",
    "log_file": "log_file",
}
CRAWL_COMMANDS = ("crawl", "watch")
TABLES = ("scrapy", "notify")
NOTIFY_KEYS = ("urls",)
SCRAPY_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


class SettingsError(Exception):
    """The settings file cannot be used; the message is one line naming the file and the key."""


@dataclass
class FileSettings:
    """What a settings file says, validated. ``path`` is None when there is no file."""

    path: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    scrapy: dict[str, Any] = field(default_factory=dict)
    notify_urls: list[str] = field(default_factory=list)

    def default_map(self, commands: Iterable[str]) -> dict[str, dict[str, Any]]:
        """click's ``default_map``: per command, the parameter defaults this file sets."""
        result: dict[str, dict[str, Any]] = {}
        for command in commands:
            keys = {**COMMON_KEYS, **(CRAWL_KEYS if command in CRAWL_COMMANDS else {})}
            if command == "doctor":
                keys = {**COMMON_KEYS, "base_url": "base_url"}
            defaults = {param: self.values[key] for key, param in keys.items() if key in self.values}
            if defaults:
                result[command] = defaults
        return result


def settings_file(explicit: str | None) -> str | None:
    """Which file to read: ``--settings``/``NPI_CRAWLER_SETTINGS``, else ./npi-crawler.toml if any."""
    if explicit:
        return explicit
    if Path(DEFAULT_SETTINGS_FILE).is_file():
        return DEFAULT_SETTINGS_FILE
    return None


def _kind(value: Any) -> str:
    return {bool: "true/false", int: "a number", float: "a number", str: "a string", list: "a list"}.get(
        type(value), type(value).__name__
    )


def _strings(path: str, key: str, value: Any, allowed: Iterable[str] | None = None) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise SettingsError(f"{path}: '{key}' must be a string or a list of strings")
    if allowed is not None:
        allowed = list(allowed)
        for v in value:
            if v not in allowed:
                raise SettingsError(f"{path}: '{key}': {v!r} is not one of {', '.join(allowed)}")
    return value


def validate(data: dict[str, Any], path: str) -> FileSettings:
    """Check every key of a parsed settings file; raises SettingsError on the first problem."""
    result = FileSettings(path=path)
    known = {*COMMON_KEYS, *CRAWL_KEYS, *TABLES}
    for key, value in data.items():
        if key not in known:
            raise SettingsError(f"{path}: unknown key '{key}'; the keys are {', '.join(sorted(known))}")
        if key in ("db", "log_file"):
            if not isinstance(value, str) or not value:
                raise SettingsError(f"{path}: '{key}' must be a file path (a string), not {_kind(value)}")
            result.values[key] = os.path.expanduser(value)
        elif key == "base_url":
            if not isinstance(value, str) or not value.startswith(("http://", "https://")):
                raise SettingsError(f"{path}: 'base_url' must be a URL starting with http:// or https://")
            result.values[key] = value
        elif key == "lang":
            result.values[key] = tuple(_strings(path, key, value, LANGS))
        elif key == "section":
            result.values[key] = tuple(_strings(path, key, value, SECTIONS))
        elif key == "delay":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise SettingsError(f"{path}: 'delay' must be a number of seconds, 0 or more")
            result.values[key] = float(value)
        elif key == "concurrency":
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SettingsError(f"{path}: 'concurrency' must be a whole number, 1 or more")
            result.values[key] = value
        elif key in ("quiet", "verbose"):
            if not isinstance(value, bool):
                raise SettingsError(f"{path}: '{key}' must be true or false, not {_kind(value)}")
            result.values[key] = value
        elif key == "scrapy":
            if not isinstance(value, dict):
                raise SettingsError(f"{path}: 'scrapy' must be a table ([scrapy])")
            for name, setting in value.items():
                if not SCRAPY_NAME.match(name):
                    raise SettingsError(
                        f"{path}: [scrapy] '{name}' is not a Scrapy setting name (UPPER_CASE)"
                    )
                if isinstance(setting, dict):
                    raise SettingsError(f"{path}: [scrapy] '{name}' must be a value, not a table")
                result.scrapy[name] = setting
        elif key == "notify":
            if not isinstance(value, dict):
                raise SettingsError(f"{path}: 'notify' must be a table ([notify])")
            for name, setting in value.items():
                if name not in NOTIFY_KEYS:
                    raise SettingsError(
                        f"{path}: [notify] unknown key '{name}'; the keys are {', '.join(NOTIFY_KEYS)}"
                    )
                result.notify_urls = _strings(path, "notify.urls", setting)
    if result.values.get("quiet") and result.values.get("verbose"):
        raise SettingsError(f"{path}: 'quiet' and 'verbose' cannot both be true")
    return result


def load_settings(path: str | None) -> FileSettings:
    """Read and validate the settings file at ``path`` (None: no file, every default)."""
    if path is None:
        return FileSettings()
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise SettingsError(f"settings file {path} does not exist") from None
    except IsADirectoryError:
        raise SettingsError(f"settings file {path} is a directory") from None
    except PermissionError:
        raise SettingsError(f"settings file {path} cannot be read (permission denied)") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise SettingsError(f"{path} is not UTF-8 text") from None
    return validate(data, path)


def notify_urls(settings: FileSettings, environ: dict[str, str] | None = None) -> list[str]:
    """Notification URLs: the settings file's ``[notify] urls`` then ``NPI_NOTIFY_URLS`` (separated
    by spaces, commas or new lines), without duplicates."""
    environ = os.environ if environ is None else environ
    from_env = [u for u in re.split(r"[\s,]+", environ.get(NOTIFY_URLS_ENV, "")) if u]
    return list(dict.fromkeys([*settings.notify_urls, *from_env]))
