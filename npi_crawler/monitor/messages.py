"""What an alert says: titles, bodies and tags of messages, as pure functions.

Formatting is apart from sending (monitor/channels.py): every channel gets the same text, and the
differ stores the formatted message in the outbox, so a retry sends exactly what was first meant.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from npi_crawler.constants import SECTION_NAMES

PREFIX = "NPI"
EXCERPT_CHARS = 300
ATTENTION_TITLE = "npi-crawler needs attention"
KIND_LABEL = {"new": "", "changed": "Updated: ", "removed": "Removed: "}


def alert_tags(lang: str, sections: Iterable[str]) -> list[str]:
    """The tags an article alert carries: ``all``, its language, each of its sections, and each
    ``section-lang`` pair (e.g. ``all, en, policy, industry, policy-en, industry-en``)."""
    sections = list(sections)
    return ["all", lang, *sections, *(f"{s}-{lang}" for s in sections)]


def excerpt(body: str, limit: int = EXCERPT_CHARS) -> str:
    text = " ".join(body.split("\n\n")[:3]).strip()
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def format_article(article: dict[str, Any], kind: str, watched_sections: list[str]) -> dict[str, Any]:
    """Title, body and tags of one article alert. ``watched_sections`` picks the prefix."""
    lang = article["lang"]
    first = (watched_sections or article["sections"] or ["npi"])[0]
    title = f"[{PREFIX} {first}/{lang}] {KIND_LABEL.get(kind, '')}{article['title']}"
    names = [SECTION_NAMES[s][0 if lang == "ja" else 1] for s in article["sections"] if s in SECTION_NAMES]
    lines = [
        f"Date: {article.get('published') or 'unknown'}",
        f"Sections: {', '.join(names) or 'none'}",
        "",
    ]
    if kind == "removed":
        lines.append("The article's page now answers 404/410.")
    elif body := excerpt(article.get("body") or ""):
        lines.append(body)
    lines += ["", article["url"]]
    return {
        "url": article["url"],
        "title": title,
        "body": "\n".join(lines),
        "tags": alert_tags(lang, article["sections"]),
    }


def format_attention(problems: list[str], admin_tag: str) -> dict[str, Any]:
    """The layout alarm: what looks broken (each problem names the [selectors] keys that matched
    nothing), and what to do: probe a page, then name the new markup in the settings file."""
    body = "\n".join(
        [
            "The site's HTML seems to have changed; this run recorded no removals and sent no article alerts.",
            *problems,
            "What to do: run 'npi-crawler probe URL' on a list page and on one of its articles: it shows "
            "which selector each field came from and which keys missed. Name the new markup for those keys "
            "under [selectors] in the settings file, probe again until it exits 0, and the next run reads "
            "the site again (docs/alerts.md#the-layout-alarm).",
        ]
    )
    return {"title": ATTENTION_TITLE, "body": body, "tags": [admin_tag]}


def format_flood(messages: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    """One summary for a burst over the flood limit, routed to every channel that would have had
    any of its alerts (the union of their tags)."""
    tags = list(dict.fromkeys(t for m in messages for t in m["tags"]))
    shown = messages[:limit]
    lines = [
        f"{len(messages)} alerts at once, more than the limit of {limit} (NPI_ALERT_FLOOD_LIMIT): "
        "the site may have been reorganised or its URLs changed. They are recorded in the events "
        "table and summed up here instead of being sent one by one.",
        "",
    ]
    lines += [f"{m['title']}\n{m['url']}" for m in shown]
    if len(messages) > limit:
        lines.append(f"... and {len(messages) - limit} more (npi-crawler status; table events)")
    return {"title": f"[{PREFIX}] {len(messages)} new items at once", "body": "\n".join(lines), "tags": tags}


def format_digest(alerts: list[dict[str, Any]]) -> tuple[str, str]:
    """One message listing several alerts (``--digest``)."""
    title = f"[{PREFIX}] {len(alerts)} new item{'s' if len(alerts) != 1 else ''}"
    parts = []
    for alert in alerts:
        parts.append(alert["title"] + (f"\n{alert['article_url']}" if alert.get("article_url") else ""))
    return title, "\n\n".join(parts)
