"""Reading a TOML file a user wrote (the settings file, a rules file): every way it can fail is
one line naming the file and saying what to do, raised as the caller's error class. The file
itself is read by the one reader of user files (npi_crawler/userfile.py: a regular file only,
size-capped, UTF-8 with or without a BOM)."""

from __future__ import annotations

import sys
from typing import Any

from npi_crawler.errors import NpiError
from npi_crawler.userfile import read_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

MAX_TOML_BYTES = 4_000_000  # a rules file of 10,000 rules is about 1 MB


def read_toml(path: str, *, what: str, error: type[NpiError], max_bytes: int = MAX_TOML_BYTES) -> dict[str, Any]:
    """The parsed document at ``path``; ``what`` names it in errors ("settings file")."""
    text = read_text(path, what=what, error=error, max_bytes=max_bytes)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path} is not valid TOML: {exc}") from None
    except RecursionError:
        # tomllib parses nested arrays and inline tables recursively: 3,000 levels were a traceback.
        raise error(
            f"{path} nests arrays or inline tables too deeply (hundreds of levels) for a TOML reader; "
            "is it the right file?"
        ) from None
