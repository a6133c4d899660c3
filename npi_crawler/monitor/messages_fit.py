"""Messages that fit their channel: no alert fails because it is too long for its service.

What Apprise 2.2.0 does (read in apprise/plugins/base.py, ``_apply_overflow``):

- Each plugin declares its limits: ``body_maxlen`` (Discord 2000, Telegram 4096, SMS services
  160, ntfy 7800, Slack 35000, 32768 when it says nothing), ``title_maxlen`` (250 by default;
  0 when the service has no title field: Apprise then sends ``title + "\\r\\n" + body``),
  ``overflow_amalgamate_title`` (Discord: title and body share the 2000) and
  ``body_max_line_count`` (desktop notifications: 2 or 10 lines, the rest silently dropped).
- What happens to a message over the limit is the URL's ``overflow=`` parameter, and every plugin
  defaults to ``upstream``: sent as it is, and the service refuses it (Discord answers 400), so
  the alert fails at every retry until it is reported stuck.
- ``overflow=truncate`` cuts the body at the limit: the article URL, on the last line, is lost.
- ``overflow=split`` sends several messages; when a later one fails, ``notify()`` answers False
  and the outbox's retry sends the first ones again: a duplicate, which the outbox exists to avoid.

So npi-crawler fits each message to its channel itself, before Apprise sees it: the title and
every link line stay whole (a URL, ``PDF: URL``, ``History: npi-crawler history URL``: half a link
or a command is no use); the other lines are shortened (longest first), then dropped (from the
bottom), then the link lines other than the last one (the article's URL) are dropped (from the
bottom), then the title is shortened, and only as a last resort is anything cut hard. A list
(a digest, the flood summary) keeps as many whole items as fit and ends "… and N more", or is
packed into several messages (``pack``) that the outbox can mark sent one by one. A channel whose
URL sets ``overflow=split`` itself gets the message whole: the user chose Apprise's splitting.

Lengths are counted in UTF-16 code units: Telegram counts those, Apprise counts code points, and
the first is never smaller than the second, so a message that fits one fits both.

Pure functions: ``Limits.of`` reads a plugin's attributes without importing Apprise.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

MIN_LINE = 60  # a shortened line keeps at least this much before lines are dropped
MIN_TITLE = 40  # a title shortened to share a small budget keeps at least this much
ELLIPSIS = "…"
MERGE_SEPARATOR = 2  # Apprise joins title and body with "\r\n" when the service has no title
URL_LINE = re.compile(r"\s*[a-z][a-z0-9+.-]*://\S+\s*", re.IGNORECASE)
# A line kept whole or dropped, never cut: a URL, or a short label and a URL or a command.
LINK_LINE = re.compile(
    r"\s*(?:[A-Z][\w ,'()-]{0,40}: )?(?:[a-z][a-z0-9+.-]*://\S+|npi-crawler \S.*?)\s*", re.IGNORECASE
)


@dataclass(frozen=True)
class Limits:
    """A channel's limits, as its Apprise plugin declares them."""

    body: int = 32768
    title: int = 250  # 0: no title field; the title becomes the body's first line
    shared: bool = False  # the title counts against ``body`` (Discord)
    lines: int = 0  # 0: any number of lines

    @classmethod
    def of(cls, plugin: Any) -> Limits:
        """The limits of an Apprise plugin instance (``Channel.server``)."""
        return cls(
            body=int(getattr(plugin, "body_maxlen", cls.body)),
            title=int(getattr(plugin, "title_maxlen", cls.title)),
            shared=bool(getattr(plugin, "overflow_amalgamate_title", False)),
            lines=int(getattr(plugin, "body_max_line_count", 0)),
        )


def chosen_overflow(plugin: Any) -> str | None:
    """The ``overflow=`` mode the channel's URL or config sets explicitly, else None (Apprise
    sets the instance attribute only when the parameter is given)."""
    mode = vars(plugin).get("overflow_mode")
    return None if mode is None else str(getattr(mode, "value", mode))


def measure(text: str) -> int:
    """Length in UTF-16 code units (an emoji counts 2, a kanji 1)."""
    return len(text.encode("utf-16-le")) // 2


def cut(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` units, ending with … when something was left out."""
    if measure(text) <= limit:
        return text
    if limit <= 0:
        return ""
    kept = text[: limit - 1]
    while kept and measure(kept) > limit - 1:
        kept = kept[:-1]
    return kept.rstrip() + ELLIPSIS


def body_budget(title: str, limits: Limits) -> int:
    """Units left for the body once the title is placed."""
    if limits.title <= 0:
        return limits.body - (measure(title) + MERGE_SEPARATOR if title else 0)
    return limits.body - measure(title) if limits.shared else limits.body


def fits(title: str, body: str, limits: Limits) -> bool:
    if limits.title > 0 and measure(title) > limits.title:
        return False
    if limits.lines:
        lines = body.count("\n") + 1 + (1 if limits.title <= 0 and title else 0)
        if lines > limits.lines:
            return False
    return measure(body) <= body_budget(title, limits)


def fit(title: str, body: str, limits: Limits) -> tuple[str, str]:
    """(title, body) shortened to fit ``limits``, keeping the title and link lines whole as long
    as they fit at all, and the last link line (an alert's URL) longest."""
    if fits(title, body, limits):
        return title, body
    if limits.title > 0:
        title = cut(title, limits.title)
    lines = [line.rstrip() for line in body.split("\n")]
    kept = list(range(len(lines)))
    links = [i for i in kept if LINK_LINE.fullmatch(lines[i])]
    free = [i for i in kept if i not in links]
    droppable = free + links[:-1]  # in the order they go: text from the bottom, then links
    while True:
        shortened = _shorten(lines, kept, free, body_budget(title, limits))
        if fits(title, shortened, limits):
            return title, shortened
        if not droppable:
            break
        gone = droppable.pop(len(free) - 1 if free else -1)  # the lowest text line, else link line
        kept.remove(gone)
        if gone in free:
            free.remove(gone)
    if limits.title <= 0 or limits.shared:
        title = cut(title, max(MIN_TITLE, body_budget("", limits) - measure(shortened) - MERGE_SEPARATOR))
        if fits(title, shortened, limits):
            return title, shortened
    last = lines[links[-1]].strip() if links else ""
    body = url[0].strip() if (url := URL_LINE.search(last)) else last  # the URL of a labelled line
    if not fits(title, body, limits):
        title = cut(title, body_budget("", limits) - measure(body) - MERGE_SEPARATOR)
    if not fits(title, body, limits):
        body = cut(body, body_budget(title, limits))
    if limits.lines and not fits(title, body, limits):
        title = ""
    return title, body


def _shorten(lines: list[str], kept: list[int], free: list[int], budget: int) -> str:
    """The kept lines, the free ones capped at the largest length that fits ``budget`` (no less
    than MIN_LINE), blank lines folded."""
    fixed = sum(measure(lines[i]) for i in kept if i not in free) + max(0, len(kept) - 1)
    sizes = [measure(lines[i]) for i in free]
    lo, hi = MIN_LINE, max(sizes, default=MIN_LINE)
    while lo < hi:  # the largest cap with fixed + sum(min(size, cap)) <= budget
        mid = (lo + hi + 1) // 2
        if fixed + sum(min(s, mid) for s in sizes) <= budget:
            lo = mid
        else:
            hi = mid - 1
    out = [cut(lines[i], lo) if i in free else lines[i] for i in kept]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(out))
    return text.strip("\n")


def fit_list(
    title: str, head: str, items: Sequence[str], more: Callable[[int], str], limits: Limits, left: int = 0
) -> tuple[str, str, int]:
    """A message listing ``items`` (each one or more lines) after ``head``: as many whole items
    as fit, then ``more(n)`` for the n left out (``left`` of them were left out before: a flood
    summary lists its first items only). Returns (title, body, items shown)."""

    def body(k: int) -> str:
        parts = [head] if head else []
        parts += list(items[:k])
        if k < len(items) or left:
            parts.append(more(len(items) - k + left))
        return "\n\n".join(parts)

    if limits.title > 0:
        title = cut(title, limits.title)
    lo, hi = 0, len(items)
    while lo < hi:  # the largest k whose message fits
        mid = (lo + hi + 1) // 2
        if fits(title, body(mid), limits):
            lo = mid
        else:
            hi = mid - 1
    if fits(title, body(lo), limits):
        return title, body(lo), lo
    title, text = fit(title, body(0), limits)
    return title, text, 0


def pack(
    items: Sequence[str], limits: Limits, title_for: Callable[[int], str], sep: str = "\n\n"
) -> list[list[int]]:
    """Items (by index, in order) grouped into as few messages as fit: each group's
    ``sep.join`` under the title ``title_for(len(group))`` fits ``limits``. An item too long even
    alone is a group of its own (``fit`` it when sending)."""
    groups: list[list[int]] = []
    current: list[int] = []
    for i in range(len(items)):
        trial = current + [i]
        if current and not fits(title_for(len(trial)), sep.join(items[j] for j in trial), limits):
            groups.append(current)
            trial = [i]
        current = trial
    if current:
        groups.append(current)
    return groups
