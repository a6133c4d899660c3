"""What watcher rules match in the archive: ``rules check`` (how many articles, the newest few)
and ``feed --rule`` (a rule's matches as Atom). The same matcher as ``watch``
(npi_crawler.rules.matching), over every live article with the text of its PDFs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from npi_crawler.archive import Archive
from npi_crawler.rules.matching import Document, Match, MatchIndex
from npi_crawler.rules.model import Rule


@dataclass
class RuleReport:
    """One rule over the archive: how many live articles it matches, and the newest of them."""

    rule: Rule
    count: int
    latest: list[tuple[Document, Match]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule.name,
            "tags": list(self.rule.tags),
            "matches": self.count,
            "latest": [
                {
                    "published": doc.published,
                    "lang": doc.lang,
                    "title": doc.title,
                    "url": doc.url,
                    "where": match.where,
                    "pdf_url": match.pdf_url,
                    "snippet": match.snippet,
                }
                for doc, match in self.latest
            ],
        }


def check_rules(archive: Archive, rules: Sequence[Rule], latest: int = 3) -> list[RuleReport]:
    """Each rule's count of matching live articles and its ``latest`` newest matches."""
    with MatchIndex(archive.rule_documents()) as index:
        reports = []
        for rule in rules:
            found = index.newest_first(index.matching_docs(rule))
            shown = [(index.documents[n], index.first_match(rule, n)) for n in found[:latest]]
            reports.append(RuleReport(rule, len(found), shown))
    return reports


def rule_matches(
    archive: Archive, rule: Rule, *, langs: Iterable[str] = (), limit: int | None = None
) -> list[tuple[Document, Match]]:
    """The live articles ``rule`` matches (in ``langs``, when given), newest first."""
    langs = set(langs)
    with MatchIndex(archive.rule_documents()) as index:
        found = index.newest_first(index.matching_docs(rule))
        found = [n for n in found if not langs or index.documents[n].lang in langs]
        return [(index.documents[n], index.first_match(rule, n)) for n in found[:limit]]
