"""Scrapy settings given as text or TOML (``-s NAME=VALUE``, the settings file's ``[scrapy]``
table), checked once against the type of their default before anything is opened or locked.

Scrapy converts a setting only where a component reads it (``getfloat``, ``getint``...), deep in
the crawl: ``DOWNLOAD_TIMEOUT = "abc"`` or ``DOWNLOAD_MAXSIZE = "20MB"`` was a 74-91 line
traceback after the archive was opened and locked. Here a value is converted as the default of
the same name says (the project's settings, else Scrapy's; ``crawl.setting_defaults``): a number
(finite; 0 or more, but priorities; within its range in ``constants.SETTING_RANGES`` when it has
one: ``CONCURRENT_REQUESTS_PER_DOMAIN=0`` or ``DOWNLOAD_DELAY=1e12`` is a run that never sends a
request, with the lock held), a boolean, a list or a dict. Settings with a text or no
default, and names neither knows (a user's own extension), are passed as given. Scrapy is
imported only when there is a value to check, and only by npi_crawler.runner.
"""

from __future__ import annotations

import functools
import json
import math
from typing import Any

from npi_crawler.constants import MAX_SETTING_NUMBER, SETTING_RANGES
from npi_crawler.errors import SettingsError

_TRUE = ("1", "true", "True")
_FALSE = ("0", "false", "False")


@functools.cache
def _defaults() -> dict[str, Any]:
    from npi_crawler.runner import setting_defaults  # Scrapy's own: only the runner imports Scrapy

    return setting_defaults()


def _kind(name: str, default: Any) -> str | None:
    if isinstance(default, bool) or name.endswith("_ENABLED"):  # TELNETCONSOLE_ENABLED = 1
        return "bool"
    if isinstance(default, (int, float)):
        return "number"
    if isinstance(default, (list, tuple)):
        return "list"
    if isinstance(default, dict):
        return "dict"
    return None


def _bounds(name: str) -> tuple[float, float]:
    """The range of a numeric setting (constants.SETTING_RANGES; priorities may be negative)."""
    if name in SETTING_RANGES:
        return SETTING_RANGES[name]
    return (-MAX_SETTING_NUMBER if "PRIORITY" in name else 0, MAX_SETTING_NUMBER)


def _number(name: str, value: Any, default: Any, where: str) -> int | float:
    low, high = _bounds(name)
    if name in SETTING_RANGES:
        hint = f"{name} takes a number from {low:g} to {high:g} (default {default!r})"
    else:
        hint = f"{name} takes a number{'' if 'PRIORITY' in name else ', 0 or more'} (default {default!r})"
    if isinstance(value, bool):
        raise SettingsError(f"{where}: {value!r} is not a number; {hint}")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int too large for a float
        raise SettingsError(f"{where}: {value!r} is not a number; {hint}") from None
    if not math.isfinite(number) or not low <= number <= high:
        most = f", at most {MAX_SETTING_NUMBER}" if name not in SETTING_RANGES and number > high else ""
        raise SettingsError(f"{where}: {value!r} is out of range; {hint}{most}")
    # A whole number stays an int: getint() of the float 2.0 is 2, of the text "2.0" an error.
    return int(number) if number.is_integer() and not isinstance(default, float) else number


def _bool(name: str, value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in (0, 1) or str(value) in _TRUE + _FALSE:
        return str(value) in _TRUE or value == 1
    raise SettingsError(f"{where}: {value!r} is not true or false; {name} takes true/false (or 1/0)")


def _dict(name: str, value: Any, where: str) -> dict:
    if isinstance(value, dict):
        return value
    try:
        parsed = json.loads(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise SettingsError(f'{where}: {name} takes a JSON object, e.g. {{"name": 100}}')
    return parsed


def typed_setting(name: str, value: Any, where: str) -> Any:
    """``value`` converted to what Scrapy will read for ``name``, or SettingsError (exit 2) with
    one line that starts with ``where`` (``-s NAME=VALUE``, or the file and the key)."""
    default = _defaults().get(name)
    kind = _kind(name, default) if name in _defaults() else None
    if kind == "number":
        return _number(name, value, default, where)
    if kind == "bool":
        return _bool(name, value, where)
    if kind == "dict":
        return _dict(name, value, where)
    if kind == "list" and not isinstance(value, (str, list, tuple)):
        raise SettingsError(f"{where}: {value!r} is not a list; {name} takes a list (or text separated by commas)")
    return value
