"""Watcher rules: which articles a watcher wants, by words and phrases, routed by Apprise tags.

A rules file (``watch --rules FILE``) or the settings file holds TOML tables::

    [[rule]]
    name = "chips"
    any = ["semiconductor", "半導体"]   # at least one of these terms
    all = []                            # every one of these
    none = ["event notice"]             # none of these
    tags = ["chips"]                    # the Apprise tags its alerts carry (default: the name)
    sections = ["policy", "industry"]   # only articles in one of these sections (default: all)
    langs = ["en"]                      # only articles in these languages (default: both)

Everything is checked when the file is read, before any crawl: a problem is ONE line naming the
file, the rule and the key, and saying what to do. Matching itself (what a term matches) is
``npi_crawler.rules.matching``; this module is pure data and validation.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from npi_crawler.errors import SettingsError
from npi_crawler.site import LANGS, SECTIONS
from npi_crawler.tomlfile import read_toml

KEYS = ("name", "any", "all", "none", "tags", "sections", "langs")
TERM_KEYS = ("any", "all", "none")
MAX_NAME = 80
# Apprise 2.2's own tag syntax (apprise/tag.py): anything else would be split or never match.
TAG = re.compile(r"[a-z0-9][a-z0-9_-]*")
DOCS = "docs/alerts.md#rules"


class RulesError(SettingsError):
    """A rule cannot be used; the message is one line naming the file, the rule and the key
    (exit 2, like any bad setting)."""


@dataclass(frozen=True)
class Rule:
    """One validated rule. Empty ``sections`` or ``langs`` means every section or language."""

    name: str
    any: tuple[str, ...] = ()
    all: tuple[str, ...] = ()
    none: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    sections: tuple[str, ...] = ()
    langs: tuple[str, ...] = ()

    @property
    def positive(self) -> tuple[str, ...]:
        """The terms that make an article match (``any`` then ``all``), without repeats."""
        return tuple(dict.fromkeys(self.any + self.all))


def normalize_term(term: str) -> str:
    """A term as it is matched and compared: NFKC (full-width ＡＩ is AI), spaces folded."""
    return " ".join(unicodedata.normalize("NFKC", term).split())


def load_rules(path: str) -> tuple[Rule, ...]:
    """Read and validate a rules file: TOML holding only ``[[rule]]`` tables, at least one."""
    data = read_toml(path, what="rules file", error=RulesError)
    for key in data:
        if key != "rule":
            raise RulesError(
                f"{path}: unknown key '{key}'; a rules file holds only [[rule]] tables (see {DOCS})"
            )
    rules = rules_from_table(data, path)
    if not rules:
        raise RulesError(f"{path}: no [[rule]] in the file; see {DOCS} for examples")
    return rules


def rules_from_table(table: Mapping[str, Any], source: str) -> tuple[Rule, ...]:
    """The rules under the key ``rule`` of an already-parsed TOML document (a rules file or the
    settings file; other keys are the caller's business). No ``rule`` key: no rules."""
    entries = table.get("rule")
    if entries is None:
        return ()
    if not isinstance(entries, list):
        raise RulesError(f"{source}: 'rule' must be written [[rule]] (a list of tables), not [rule]")
    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for n, entry in enumerate(entries, start=1):
        rule = _rule(entry, source, n)
        key = rule.name.casefold()
        if key in seen:
            raise RulesError(
                f"{source}: rule '{rule.name}' (#{n}): the name is already used by rule #{seen[key]}; "
                "give every rule its own name"
            )
        seen[key] = n
        rules.append(rule)
    return tuple(rules)


def _rule(entry: Any, source: str, n: int) -> Rule:
    if not isinstance(entry, dict):
        raise RulesError(f"{source}: rule #{n} must be a table of keys ([[rule]] then name = ...)")
    name = _name(entry.get("name"), source, n)
    where = f"{source}: rule '{name}'"
    for key in entry:
        if key not in KEYS:
            raise RulesError(f"{where}: unknown key '{key}'; the keys are {', '.join(KEYS)}")
    terms = {key: _terms(entry.get(key, []), where, key) for key in TERM_KEYS}
    if not terms["any"] and not terms["all"]:
        raise RulesError(f"{where}: no terms; give any = [...] or all = [...] (words or phrases to look for)")
    both = {t.casefold() for t in terms["any"] + terms["all"]} & {t.casefold() for t in terms["none"]}
    if both:
        raise RulesError(
            f"{where}: '{sorted(both)[0]}' is both wanted and in 'none'; remove it from one of them"
        )
    return Rule(
        name=name,
        any=terms["any"],
        all=terms["all"],
        none=terms["none"],
        tags=_tags(entry, name, where),
        sections=_choices(entry.get("sections", []), where, "sections", SECTIONS),
        langs=_choices(entry.get("langs", []), where, "langs", LANGS),
    )


def _name(value: Any, source: str, n: int) -> str:
    if value is None:
        raise RulesError(f"{source}: rule #{n} has no 'name'; give every rule a name (name = \"chips\")")
    if not isinstance(value, str):
        raise RulesError(f"{source}: rule #{n}: 'name' must be a string, not {_kind(value)}")
    name = " ".join(value.split())
    if not name:
        raise RulesError(f"{source}: rule #{n}: 'name' is empty; give every rule a name (name = \"chips\")")
    if len(name) > MAX_NAME:
        raise RulesError(f"{source}: rule #{n}: 'name' is longer than {MAX_NAME} characters; shorten it")
    return name


def _kind(value: Any) -> str:
    kinds = {bool: "true/false", int: "a number", float: "a number", str: "a string", list: "a list"}
    return kinds.get(type(value), "a table" if isinstance(value, dict) else type(value).__name__)


def _strings(value: Any, where: str, key: str) -> list[str]:
    """A string or a list of strings (a lone string is a list of one, as in the settings file)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise RulesError(f"{where}: '{key}' must be a list of strings, not {_kind(value)}")
    for item in items:
        if not isinstance(item, str):
            raise RulesError(f"{where}: '{key}' must be a list of strings; {item!r} is {_kind(item)}")
    return items


def _terms(value: Any, where: str, key: str) -> tuple[str, ...]:
    terms = []
    for raw in _strings(value, where, key):
        term = normalize_term(raw)
        if not term:
            raise RulesError(f"{where}: '{key}' has an empty term; remove it or write a word or phrase")
        if not any(ch.isalnum() for ch in term):
            raise RulesError(
                f"{where}: '{key}': {raw!r} has no letter or digit; a term is a word or a phrase"
            )
        terms.append(term)
    return tuple(dict.fromkeys(terms))


def _choices(value: Any, where: str, key: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    items = _strings(value, where, key)
    for item in items:
        if item not in allowed:
            raise RulesError(f"{where}: '{key}': {item!r} is not one of {', '.join(allowed)}")
    return tuple(dict.fromkeys(items))


def _tags(entry: dict[str, Any], name: str, where: str) -> tuple[str, ...]:
    if "tags" not in entry:
        if TAG.fullmatch(name.lower()):
            return (name.lower(),)
        raise RulesError(
            f"{where}: the name is not an Apprise tag (a-z, 0-9, _ and -), so it cannot be the "
            'default tag; add tags = ["..."]'
        )
    tags = [t.strip().lower() for t in _strings(entry["tags"], where, "tags")]
    if not tags:
        raise RulesError(
            f"{where}: 'tags' is empty, so its alerts would reach no channel; give at least one tag "
            "or leave 'tags' out to use the rule's name"
        )
    for tag in tags:
        if not TAG.fullmatch(tag):
            raise RulesError(
                f"{where}: 'tags': {tag!r} is not an Apprise tag; use a-z, 0-9, _ and - (like policy-en)"
            )
    return tuple(dict.fromkeys(tags))
