"""What an alert says: titles, bodies and tags of messages, as pure functions.

Formatting is apart from sending (monitor/channels.py): every channel gets the same text, and the
differ stores the formatted message in the outbox, so a retry sends exactly what was first meant.

An article alert carries the next step: its date, authors and sections; for a new article a short
excerpt (``EXCERPT_CHARS``), a rule's snippet only when it shows more than the excerpt, and a
``PDF: URL`` line per PDF; for an edit what changed (monitor/changes.py) and the ``history`` and
``snapshot`` commands that show the rest; for a removal the last version's date and the
``snapshot --at`` command that shows it as served. The article's URL is always the last line, the
one that fitting to a channel keeps longest (monitor/messages_fit.py).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Sequence
from typing import Any

from npi_crawler.monitor.changes import is_japanese, sentences
from npi_crawler.site import SECTION_NAMES
from npi_crawler.site.text import HIRAGANA, fold, is_cjk

PREFIX = "NPI"
# An excerpt is about this long (characters): a Japanese character says about as much as two
# English letters. Cut at a sentence end when one falls in the second half, else at a word.
EXCERPT_CHARS = {"ja": 120, "en": 250}
ATTENTION_TITLE = "npi-crawler needs attention"
KIND_LABEL = {"new": "", "changed": "Updated: ", "removed": "Removed: "}  # joined: "Now in <section>: "
DEFAULT_DB = "npi.db"  # the CLI's --db default: commands in alerts name --db only when it differs
_SPACE = re.compile(" ")
_JA_BREAK = re.compile(f"(?<=[、，・」』）〕】 ])|(?<=[{HIRAGANA}])(?=[^{HIRAGANA}、。，．！？」』）])")


def alert_tags(lang: str, sections: Iterable[str]) -> list[str]:
    """The tags an article alert carries: ``all``, its language, each of its sections, and each
    ``section-lang`` pair (e.g. ``all, en, policy, industry, policy-en, industry-en``)."""
    sections = list(sections)
    return ["all", lang, *sections, *(f"{s}-{lang}" for s in sections)]


def excerpt(body: str, lang: str = "en") -> str:
    """The opening of ``body``, about ``EXCERPT_CHARS[lang]`` characters: whole sentences when
    they fill at least half of that, else cut at a word (Japanese: after 、 or a particle before
    the next word) with …."""
    limit = EXCERPT_CHARS.get(lang, EXCERPT_CHARS["en"])
    text = _opening(body, limit * 2)
    if len(text) <= limit:
        return text
    kept = ""
    for sentence in sentences(text):
        joined = _join(kept, sentence)
        if len(joined) > limit:
            break
        kept = joined
    if len(kept) * 2 >= limit:
        return kept
    head = text[: limit - 1]
    pattern = _JA_BREAK if is_japanese(head) else _SPACE
    breaks = [m.start() for m in pattern.finditer(head)]
    at = max((b for b in breaks if b * 2 >= limit), default=limit - 1)
    return head[:at].rstrip(" ,;:、，") + "…"


def _opening(body: str, enough: int) -> str:
    """The first paragraphs of ``body``, white space folded, up to about ``enough`` characters."""
    text = ""
    for paragraph in body.split("\n\n"):
        if len(text) >= enough:
            break
        text = _join(text, " ".join(paragraph.split()))
    return text


def _join(text: str, more: str) -> str:
    """Two pieces of text as one line: no space after Japanese punctuation, one otherwise."""
    if not text or not more:
        return text or more
    return text + ("" if text[-1] in "。！？」』）" else " ") + more


def section_name(section: str, lang: str) -> str:
    names = SECTION_NAMES.get(section)
    return names[0 if lang == "ja" else 1] if names else section


def match_line(match: Any) -> str:
    """Where a rule's first term was found, and the text around it (``matching.Match``)."""
    where = f"PDF {match.pdf_url}" if match.where == "pdf" else match.where
    return f"Match in {where}: {match.snippet}"


def adds_to(match: Any, shown: str) -> bool:
    """Whether a rule's snippet says more than the alert shows already: a match in a PDF always
    does, one in the title never (the title is the alert's title), one in the body when the
    words it marks are not in the excerpt ``shown``."""
    if match.where != "body":
        return match.where == "pdf"
    marked = re.search(r"\[([^\[\]]+)\]", match.snippet)
    if marked is None:
        return True
    words = re.escape(marked[1])
    pattern = words if is_cjk(marked[1]) else rf"(?<!\w){words}(?!\w)"
    return re.search(pattern, fold(shown), re.IGNORECASE) is None


def command(*words: str, db: str | None = None) -> str:
    """An ``npi-crawler`` command line, ready to paste (``--db`` when the archive is not the default)."""
    args = list(words) + (["--db", db] if db and db != DEFAULT_DB else [])
    return " ".join(["npi-crawler", *(shlex.quote(a) for a in args)])


def format_article(
    article: dict[str, Any],
    kind: str,
    watched_sections: list[str],
    matches: Sequence[Any] = (),
    tags: list[str] | None = None,
    *,
    db: str | None = None,
) -> dict[str, Any]:
    """Title, body and tags of one article alert. ``watched_sections`` picks the prefix (for
    ``joined``, the section it joined); ``matches`` are the rules it matched (``matching.Match``),
    named in a ``Rules:`` line with the first one's snippet when it adds to the excerpt; ``tags``
    default to the policy's. ``article`` is ``alert_article``'s row; a ``changed`` one also has
    ``change`` (``changes.Changes``) and ``before_served``, a ``removed`` one ``last_version``.
    ``db``: the archive's path, for the commands the alert names."""
    lang = article["lang"]
    first = (watched_sections or article["sections"] or ["npi"])[0]
    label = f"Now in {section_name(first, lang)}: " if kind == "joined" else KIND_LABEL.get(kind, "")
    title = f"[{PREFIX} {first}/{lang}] {label}{article['title']}"
    names = [section_name(s, lang) for s in article["sections"] if s in SECTION_NAMES]
    lines = [f"Date: {article.get('published') or 'unknown'}"]
    if article.get("authors"):
        lines.append(f"Authors: {', '.join(article['authors'])}")
    lines.append(f"Sections: {', '.join(names) or 'none'}")
    if kind == "changed":
        lines += _changed_lines(article, db)
    elif kind == "removed":
        lines += _removed_lines(article, db)
    else:
        lines += _new_lines(article, matches)
    lines += ["", article["url"]]
    return {
        "url": article["url"],
        "title": title,
        "body": "\n".join(lines),
        "tags": tags if tags is not None else alert_tags(lang, article["sections"]),
        "rules": [m.rule for m in matches],
    }


def _new_lines(article: dict[str, Any], matches: Sequence[Any]) -> list[str]:
    """What a new article's alert says after its header: the rules and a snippet that adds to
    the excerpt, the excerpt, a line per PDF."""
    shown = excerpt(article.get("body") or "", article["lang"])
    lines = []
    if matches:
        lines.append(f"Rules: {', '.join(m.rule for m in matches)}")
        if adds_to(matches[0], shown):
            lines.append(match_line(matches[0]))
    lines += ["", shown] if shown else []
    pdfs = article.get("pdfs") or []
    return lines + ([""] + [f"PDF: {url}" for url in pdfs] if pdfs else [])


def _changed_lines(article: dict[str, Any], db: str | None) -> list[str]:
    """What changed (``changes.Changes.lines``), then the commands that show the rest."""
    change = article.get("change")
    url = article["url"]
    lines = [""] + (change.lines() if change else ["(only fields the alert does not show changed)"])
    lines += ["", f"History: {command('history', url, db=db)}"]
    if article.get("before_served"):
        lines.append(f"Before the edit: {command('snapshot', url, '--at', article['before_served'], db=db)}")
    return lines


def _removed_lines(article: dict[str, Any], db: str | None) -> list[str]:
    """When the page went, the last version's date, and the command that shows it as served."""
    last = article.get("last_version") or {}
    status = f"HTTP {last['removed_status']}" if last.get("removed_status") else "404/410"
    lines = ["", f"Removed: its page answered {status} at {last.get('removed_at') or 'the last full run'}."]
    if last.get("stored"):
        served = f", last served {last['served']}" if last.get("served") else ""
        lines.append(f"Last version: stored {last['stored'][:10]}{served}")
    lines.append("")
    if last.get("served"):
        lines.append(f"As served: {command('snapshot', article['url'], '--at', last['served'], db=db)}")
    lines.append(f"History: {command('history', article['url'], db=db)}")
    return lines


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
    head = (
        f"{len(messages)} alerts at once, more than the limit of {limit} (NPI_ALERT_FLOOD_LIMIT): "
        "the site may have been reorganised or its URLs changed. They are recorded in the events "
        "table and summed up here instead of being sent one by one."
    )
    items = [f"{m['title']}\n{m['url']}" for m in messages[:limit]]
    more = max(0, len(messages) - limit)
    parts = {"head": head, "items": items, "more": more}
    title = f"[{PREFIX}] {len(messages)} new items at once"
    body = "\n\n".join([head, *items, *([more_line(more)] if more else [])])
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
