"""What an alert says: titles, bodies and tags of messages, as pure functions.

Formatting is apart from sending (monitor/channels.py): every channel gets the same text, and the
differ stores the formatted message in the outbox, so a retry sends exactly what was first meant.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from npi_crawler.constants import SECTION_NAMES

PREFIX = "NPI"
EXCERPT_CHARS = 300
ATTENTION_TITLE = "npi-crawler needs attention"
KIND_LABEL = {"new": "", "changed": "Updated: ", "removed": "Removed: "}  # joined: "Now in <section>: "


def alert_tags(lang: str, sections: Iterable[str]) -> list[str]:
    """The tags an article alert carries: ``all``, its language, each of its sections, and each
    ``section-lang`` pair (e.g. ``all, en, policy, industry, policy-en, industry-en``)."""
    sections = list(sections)
    return ["all", lang, *sections, *(f"{s}-{lang}" for s in sections)]


def excerpt(body: str, limit: int = EXCERPT_CHARS) -> str:
    text = " ".join(body.split("\n\n")[:3]).strip()
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def section_name(section: str, lang: str) -> str:
    names = SECTION_NAMES.get(section)
    return names[0 if lang == "ja" else 1] if names else section


def match_line(match: Any) -> str:
    """Where a rule's first term was found, and the text around it (``matching.Match``)."""
    where = f"PDF {match.pdf_url}" if match.where == "pdf" else match.where
    return f"Match in {where}: {match.snippet}"


def format_article(
    article: dict[str, Any],
    kind: str,
    watched_sections: list[str],
    matches: Sequence[Any] = (),
    tags: list[str] | None = None,
) -> dict[str, Any]:
    """Title, body and tags of one article alert. ``watched_sections`` picks the prefix (for
    ``joined``, the section it joined); ``matches`` are the rules it matched (``matching.Match``),
    named in a ``Rules:`` line with the first one's snippet; ``tags`` default to the policy's."""
    lang = article["lang"]
    first = (watched_sections or article["sections"] or ["npi"])[0]
    label = f"Now in {section_name(first, lang)}: " if kind == "joined" else KIND_LABEL.get(kind, "")
    title = f"[{PREFIX} {first}/{lang}] {label}{article['title']}"
    names = [section_name(s, lang) for s in article["sections"] if s in SECTION_NAMES]
    lines = [
        f"Date: {article.get('published') or 'unknown'}",
        f"Sections: {', '.join(names) or 'none'}",
    ]
    if matches:
        lines += [f"Rules: {', '.join(m.rule for m in matches)}", match_line(matches[0])]
    lines.append("")
    if kind == "removed":
        lines.append("The article's page now answers 404/410.")
    elif body := excerpt(article.get("body") or ""):
        lines.append(body)
    lines += ["", article["url"]]
    return {
        "url": article["url"],
        "title": title,
        "body": "\n".join(lines),
        "tags": tags if tags is not None else alert_tags(lang, article["sections"]),
        "rules": [m.rule for m in matches],
    }


def format_attention(problems: list[str], admin_tag: str) -> dict[str, Any]:
    """The layout alarm: what looks broken (each problem names the [selectors] keys that matched
    nothing), and what to do: probe a page, then name the new markup in the settings file."""
    body = "\n".join(
        [
            "The site's HTML seems to have changed; this run recorded no removals and sent no article alerts: "
            "its new and changed articles are held, and alerted once a healthy run has fetched them again.",
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
    any of its alerts (the union of their tags). Its ``parts`` are the data it is made of (the
    explanation, one item per alert listed, how many more), stored with it (``alerts.parts``) so
    that delivery fits the list to each channel (``messages_fit.fit_list``) from the data."""
    tags = list(dict.fromkeys(t for m in messages for t in m["tags"]))
    parts = {
        "head": f"{len(messages)} alerts at once, more than the limit of {limit} (NPI_ALERT_FLOOD_LIMIT): "
        "the site may have been reorganised or its URLs changed. They are recorded in the events "
        "table and summed up here instead of being sent one by one.",
        "items": [f"{m['title']}\n{m['url']}" for m in messages[:limit]],
        "more": max(0, len(messages) - limit),
    }
    title = f"[{PREFIX}] {len(messages)} new items at once"
    body = "\n\n".join([parts["head"], *parts["items"], *([more_line(parts["more"])] if parts["more"] else [])])
    return {"title": title, "body": body, "tags": tags, "parts": parts}


def more_line(n: int) -> str:
    return f"... and {n} more (npi-crawler status; table events)"


def digest_title(n: int) -> str:
    return f"[{PREFIX}] {n} new item{'s' if n != 1 else ''}"


def digest_item(alert: dict[str, Any]) -> str:
    return alert["title"] + (f"\n{alert['article_url']}" if alert.get("article_url") else "")


def format_digest(alerts: list[dict[str, Any]]) -> tuple[str, str]:
    """One message listing several alerts (``--digest``)."""
    return digest_title(len(alerts)), "\n\n".join(digest_item(a) for a in alerts)
