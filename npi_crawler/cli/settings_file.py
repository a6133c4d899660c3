"""The settings file (TOML): the commands' own options as keys, validated by their own types.

``npi-crawler --settings FILE <command>`` (or ``NPI_CRAWLER_SETTINGS=FILE``, or ``./npi-crawler.toml``
when it exists) is read before any command runs. A key is the long name of a command option
(``--base-url`` -> ``base_url``); at the top level it applies to every command that has that option,
in a ``[crawl]``/``[watch]``/... table to that command only. Each value is converted and checked by
the option's own click type and callback: the same ranges, choices and URL checks as the flag, one
definition. An unknown key, or a key in a command's table that the command has no option for, is
one line naming the file and the key (exit 2). The values become the defaults of the flags
(click's ``default_map``), so a flag on the command line always wins.

Besides the options, three tables: ``[scrapy]`` (any Scrapy or ``NPI_*`` setting, like ``-s``),
``[notify] urls`` (Apprise URLs; secrets are better in ``NPI_NOTIFY_URLS``), ``[[rule]]``
(watcher rules, validated by rules.model) and ``[selectors]`` (the site profile's keys,
npi_crawler/site/profile.py; every selector compiled here, before any run).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from npi_crawler.errors import SettingsError
from npi_crawler.rules.model import Rule, rules_from_table
from npi_crawler.tomlfile import read_toml

SETTINGS_ENV = "NPI_CRAWLER_SETTINGS"
DEFAULT_SETTINGS_FILE = "npi-crawler.toml"
NOTIFY_URLS_ENV = "NPI_NOTIFY_URLS"
MAX_SETTINGS_BYTES = 1_000_000  # a settings file is a few lines; a huge one is a mistake
TABLES = ("scrapy", "notify", "rule", "selectors")
SCHEDULED = frozenset({"crawl", "watch", "notify", "status", "doctor", "migrate"})
# Top-level keys for every command that has the option, not only the scheduled ones: the archive,
# and the WARC folder that crawl and watch write and snapshot reads.
EVERY_COMMAND_KEYS = frozenset({"db", "warc_dir"})
# Options that have no settings-file key: secrets have [notify] urls and the environment,
# Scrapy settings the [scrapy] table; a one-off action (--resend-unknown, --ignore-retry-after) is
# no standing setting.
NOT_KEYS = frozenset({"notify_urls", "overrides", "help", "resend_unknown", "ignore_retry_after"})
_SCRAPY_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


@dataclass
class FileSettings:
    """What a settings file says, validated. ``path`` is None when there is no file."""

    path: str | None = None
    defaults: dict[str, dict[str, Any]] = field(default_factory=dict)  # command -> {param: value}
    scrapy: dict[str, Any] = field(default_factory=dict)
    notify_urls: list[str] = field(default_factory=list)
    rules: tuple[Rule, ...] = ()  # [[rule]] tables
    selectors: dict[str, list[str]] = field(default_factory=dict)  # [selectors]: NPI_SELECTORS
    watches: str | None = None  # what in the file says a watch is meant ([watch], [notify], [[rule]])

    def value(self, command: str, param: str, default: Any = None) -> Any:
        return self.defaults.get(command, {}).get(param, default)


def option_key(option: click.Parameter) -> str | None:
    """The settings-file key of a command option: its long flag without dashes, ``_`` for ``-``."""
    if not isinstance(option, click.Option) or option.name in NOT_KEYS or option.hidden:
        return None
    longs = [o for o in option.opts if o.startswith("--")]
    return longs[0][2:].replace("-", "_") if longs else None


def option_keys(command: click.Command) -> dict[str, click.Option]:
    return {key: p for p in command.params if (key := option_key(p))}  # type: ignore[misc]


def settings_path(explicit: str | None) -> str | None:
    """Which file to read: ``--settings``/``NPI_CRAWLER_SETTINGS``, else ./npi-crawler.toml if any."""
    if explicit:
        return explicit
    return DEFAULT_SETTINGS_FILE if Path(DEFAULT_SETTINGS_FILE).is_file() else None


_KINDS = {
    "integer range": "a whole number",
    "integer": "a whole number",
    "seconds": "a number of seconds",
    "float": "a number",
    "text": "a string",
    "choice": "one of the choices",
    "date": "a date",
}


def _numeric(kind: click.ParamType) -> bool:
    return isinstance(kind, (click.types._NumberParamTypeBase)) or kind.name in ("seconds", "integer", "float", "number")


def _convert(option: click.Option, value: Any, where: str) -> Any:
    """``value`` from the file as the option's type makes it, or SettingsError."""
    ctx = click.Context(click.Command("settings"))
    try:
        if option.is_flag:
            if not isinstance(value, bool):
                raise click.BadParameter(f"{value!r} must be true or false")
            converted: Any = value
        elif option.multiple:
            values = [value] if isinstance(value, str) else value
            if not isinstance(values, list) or not values or any(isinstance(v, (bool, list, dict)) for v in values):
                raise click.BadParameter("must be a value or a list of values")
            converted = tuple(option.type.convert(v, option, ctx) for v in values)
        else:
            if isinstance(value, (list, dict)):
                raise click.BadParameter(f"{value!r} must be a single value, not a list or table")
            if isinstance(value, bool) and option.type is not click.BOOL:
                raise click.BadParameter(f"{value!r} is not {_KINDS.get(option.type.name, 'a ' + option.type.name)}")
            if isinstance(value, str) and _numeric(option.type):
                raise click.BadParameter(f"{value!r} must be a number, without quotes")
            converted = option.type.convert(value, option, ctx)
        if option.callback is not None:
            converted = option.callback(ctx, option, converted)
    except click.BadParameter as exc:
        raise SettingsError(f"{where}: {exc.message}") from None
    if isinstance(converted, str) and (option.metavar in ("PATH", "FILE") or isinstance(option.type, click.Path)):
        converted = os.path.expanduser(converted)
    return converted


def _apply(settings: FileSettings, command: str, option: click.Option, value: Any, where: str) -> None:
    settings.defaults.setdefault(command, {})[option.name] = _convert(option, value, where)


def _read_tables(settings: FileSettings, data: dict[str, Any], path: str) -> None:
    scrapy = data.get("scrapy", {})
    if not isinstance(scrapy, dict):
        raise SettingsError(f"{path}: 'scrapy' must be a table ([scrapy])")
    for name, value in scrapy.items():
        if not _SCRAPY_NAME.match(name):
            raise SettingsError(f"{path}: [scrapy] '{name}' is not a Scrapy setting name (UPPER_CASE)")
        if isinstance(value, dict):
            raise SettingsError(f"{path}: [scrapy] '{name}' must be a value, not a table")
        settings.scrapy[name] = value
    notify = data.get("notify", {})
    if not isinstance(notify, dict):
        raise SettingsError(f"{path}: 'notify' must be a table ([notify])")
    for name, value in notify.items():
        if name != "urls":
            raise SettingsError(f"{path}: [notify] unknown key '{name}'; the keys are urls")
        urls = [value] if isinstance(value, str) else value
        if not isinstance(urls, list) or not all(isinstance(u, str) and u for u in urls):
            raise SettingsError(f"{path}: 'notify.urls' must be a string or a list of strings")
        settings.notify_urls = urls
    settings.rules = rules_from_table(data, path)
    _read_selectors(settings, data, path)


def _read_selectors(settings: FileSettings, data: dict[str, Any], path: str) -> None:
    selectors = data.get("selectors", {})
    if not isinstance(selectors, dict):
        raise SettingsError(f"{path}: 'selectors' must be a table ([selectors])")
    if selectors:
        from npi_crawler.site.profile import load_profile  # lxml: only for a file that has the table

        load_profile(selectors, where=f"{path}: [selectors]")
        settings.selectors = {k: [v] if isinstance(v, str) else list(v) for k, v in selectors.items()}


def validate(data: dict[str, Any], path: str, commands: Mapping[str, click.Command]) -> FileSettings:
    """Check every key of a parsed settings file against the commands' options."""
    settings = FileSettings(path=path)
    keys = {name: option_keys(command) for name, command in commands.items()}
    top = {name: {k for k in per if name in SCHEDULED or k in EVERY_COMMAND_KEYS} for name, per in keys.items()}
    known = sorted({k for per in top.values() for k in per} | set(TABLES) | {f"[{c}]" for c in commands})
    for key, value in data.items():
        if key in TABLES:
            continue
        if key in commands and isinstance(value, dict):
            for sub, sub_value in value.items():
                if sub not in keys[key]:
                    raise SettingsError(
                        f"{path}: [{key}] '{sub}' is not an option of {key}; its keys are {', '.join(sorted(keys[key]))}"
                    )
                _apply(settings, key, keys[key][sub], sub_value, f"{path}: [{key}] '{sub}'")
            continue
        users = [name for name in commands if key in top[name]]
        if not users:
            raise SettingsError(f"{path}: unknown key '{key}'; the keys are {', '.join(known)}")
        for name in users:
            if key not in data.get(name, {}):  # a command's own table wins over the top level
                _apply(settings, name, keys[name][key], value, f"{path}: '{key}'")
    _read_tables(settings, data, path)
    meant = [f"[{t}]" for t in ("watch", "notify") if t in data] + (["[[rule]]"] if settings.rules else [])
    settings.watches = f"{path} has {' and '.join(meant)}" if meant else None
    for name, values in settings.defaults.items():
        if values.get("quiet") and values.get("verbose"):
            raise SettingsError(f"{path}: 'quiet' and 'verbose' cannot both be true (for {name})")
    return settings


def load_settings(path: str | None, commands: Mapping[str, click.Command]) -> FileSettings:
    """Read and validate the settings file at ``path`` (None: no file, every default)."""
    if path is None:
        return FileSettings()
    data = read_toml(path, what="settings file", error=SettingsError, max_bytes=MAX_SETTINGS_BYTES)
    return validate(data, path, commands)


def notify_urls(settings: FileSettings, environ: Mapping[str, str] | None = None) -> list[str]:
    """Notification URLs: the settings file's ``[notify] urls`` then ``NPI_NOTIFY_URLS`` (separated
    by spaces, commas or new lines), without duplicates."""
    environ = os.environ if environ is None else environ
    from_env = [u for u in re.split(r"[\s,]+", environ.get(NOTIFY_URLS_ENV, "")) if u]
    return list(dict.fromkeys([*settings.notify_urls, *from_env]))
