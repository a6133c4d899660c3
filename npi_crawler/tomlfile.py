"""Reading a TOML file a user wrote (the settings file, a rules file): every way it can fail is
one line naming the file and saying what to do, raised as the caller's error class."""

from __future__ import annotations

import os
import sys
from typing import Any

from npi_crawler.errors import NpiError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


def read_toml(path: str, *, what: str, error: type[NpiError], max_bytes: int | None = None) -> dict[str, Any]:
    """The parsed document at ``path``; ``what`` names it in errors ("settings file")."""
    try:
        if max_bytes is not None and os.path.getsize(path) > max_bytes:
            raise error(f"{path} is larger than {max_bytes // 1000} KB; is it the right file?")
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise error(f"{what} {path} is a directory; give the path of a .toml file") from None
    except PermissionError:
        raise error(f"{what} {path} cannot be read (permission denied)") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise error(f"{path} is not UTF-8 text; save it as UTF-8") from None
