"""Every parse note, named once, and the groups the rest of the crawler reads them by.

A page reader lists in ``notes`` what it could not read the documented way: ``nomatch/<key>`` (no
selector of a profile key matched), ``fallback/…`` (a built-in fallback found the field),
``miss/…`` (nothing found it), and a few others (a title cut, an unreadable link, a page the
parser gave up on). Each note becomes the stat ``npi/parse/<note>`` and is stored with the page
(``parse_notes``); the layout alarm, the clean-version rule, ``probe`` and the run's warnings
(``WARNINGS``: what a person must act on; every other note is only counted) read them back by the
groups below. Standard library only.
"""

from __future__ import annotations

# The kinds, as prefixes of the notes' names.
NOMATCH = "nomatch/"
FALLBACK = "fallback/"
MISS = "miss/"

# -- any page -------------------------------------------------------------------------------------
TRUNCATED_PARSER_LIMIT = "truncated/parser_limit"  # lxml gave up deep in the page: the rest is missing
FALLBACK_NO_MAIN = "fallback/no_main"  # no #main (article, expert page): the whole page was read

# -- list pages -----------------------------------------------------------------------------------
FALLBACK_LIST_BOX = "fallback/list_box"  # entries from the links in div.box > p
FALLBACK_LIST_AREA_LINKS = "fallback/list_area_links"  # entries from any link in .entry_list_area
MISS_LIST_ENTRIES = "miss/list_entries"  # a list page without a single entry

# -- article pages --------------------------------------------------------------------------------
FALLBACK_TITLE_OG = "fallback/title_og"
FALLBACK_TITLE_TAG = "fallback/title_tag"
MISS_TITLE = "miss/title"
CAP_TITLE = "cap/title"  # a title longer than TITLE_MAX_CHARS, stored cut
FALLBACK_DATE_ANY = "fallback/date_any"  # any .date in the article
FALLBACK_DATE_URL = "fallback/date_url"  # the date in the URL
MISS_DATE = "miss/date"
FALLBACK_BODY_EXTRACTOR = "fallback/body_extractor"  # readability-lxml's reading of the page
FALLBACK_BODY_MAIN = "fallback/body_main"  # the article element's text
MISS_BODY = "miss/body"
BAD_LINK_PDF = "bad_link/pdf"  # a PDF link that cannot be read, skipped
BAD_LINK_AUTHOR = "bad_link/author"  # an author's profile link that cannot be read: the name kept

# Where a field came from when no selector gave it, for ``probe`` (never a note of their own: the
# pdf_link key is optional, and an author name from the link's text is noted nomatch/author_name).
SOURCE_PDF_HREF = "fallback/pdf_href"  # a link to a .pdf in the body
SOURCE_LINK_TEXT = "fallback/link_text"  # an author's name from the profile link's text

# -- expert pages ---------------------------------------------------------------------------------
FALLBACK_EXPERT_NAME_CLASS = "fallback/expert_name_class"  # .name without .b05
FALLBACK_EXPERT_NAME_TITLE = "fallback/expert_name_title"  # og:title or <title>
MISS_EXPERT_NAME = "miss/expert_name"
FALLBACK_EXPERT_TITLE_POST = "fallback/expert_title_post"  # a .post or .position element
MISS_EXPERT_TITLE = "miss/expert_title"


def nomatch(key: str) -> str:
    """The note of a profile key none of whose selectors matched: ``nomatch/title``."""
    return NOMATCH + key


# -- groups ---------------------------------------------------------------------------------------

# A field found another way than the profile's selectors, by a fallback docs/configuration.md
# documents: the value is there. ``nomatch/author_name`` is one too (the name is the link's text).
DOCUMENTED_FALLBACKS = frozenset(
    {
        FALLBACK_NO_MAIN,
        FALLBACK_LIST_BOX,
        FALLBACK_LIST_AREA_LINKS,
        FALLBACK_TITLE_OG,
        FALLBACK_TITLE_TAG,
        FALLBACK_DATE_ANY,
        FALLBACK_DATE_URL,
        FALLBACK_BODY_EXTRACTOR,
        FALLBACK_BODY_MAIN,
        FALLBACK_EXPERT_NAME_CLASS,
        FALLBACK_EXPERT_NAME_TITLE,
        FALLBACK_EXPERT_TITLE_POST,
        nomatch("author_name"),
    }
)
# A field found by nothing at all.
MISSES = frozenset({MISS_LIST_ENTRIES, MISS_TITLE, MISS_DATE, MISS_BODY, MISS_EXPERT_NAME, MISS_EXPERT_TITLE})
# The page was read, but not all of it: a title cut, a link skipped, the parser stopped.
DAMAGE = frozenset({CAP_TITLE, BAD_LINK_PDF, BAD_LINK_AUTHOR, TRUNCATED_PARSER_LIMIT})

# Each field of an article that matters, by the notes that say the profile's selectors did not
# find it: the layout alarm counts the pages with any of one field's notes (monitor.differ).
TITLE_NOTES = (FALLBACK_TITLE_OG, FALLBACK_TITLE_TAG, MISS_TITLE)
DATE_NOTES = (FALLBACK_DATE_URL, FALLBACK_DATE_ANY, MISS_DATE)
BODY_NOTES = (FALLBACK_BODY_MAIN, FALLBACK_BODY_EXTRACTOR, MISS_BODY)

# "The documented selectors found nothing" for a field that matters: a known article re-fetched
# through them keeps its clean version (pipelines), and an alert held by the layout alarm waits
# for a version without them (monitor.differ).
DEGRADED = frozenset(
    {
        FALLBACK_NO_MAIN,
        FALLBACK_TITLE_OG,
        FALLBACK_TITLE_TAG,
        MISS_TITLE,
        FALLBACK_BODY_MAIN,
        FALLBACK_BODY_EXTRACTOR,  # readability's guess: better than nothing, not the selectors' body
        MISS_BODY,
        FALLBACK_DATE_ANY,
        MISS_DATE,
        TRUNCATED_PARSER_LIMIT,  # lxml gave up deep in the page: the rest of it is missing
    }
)

# What a person must act on (probe the page, fix [selectors]): a field that matters found by
# nothing at all, or a page the parser gave up on. Every other note (a documented fallback, a
# profile key that matched nothing while a fallback found the field, an optional field a page
# lacks such as an expert's position, a title cut to its cap, an unreadable link skipped) is
# counted and shown (status, probe, --verbose) but warns nobody: the site is read as documented.
# The layout alarm does not read this split: it counts the fallbacks too (TITLE_NOTES...).
WARNINGS = MISSES - {MISS_EXPERT_TITLE} | {TRUNCATED_PARSER_LIMIT}


def is_warning(note: str) -> bool:
    """Whether the parse note ``note`` asks a person to act (else it is only counted)."""
    return note in WARNINGS


# Every note a page reader writes but ``nomatch/<key>`` (one per profile key).
FIXED = DOCUMENTED_FALLBACKS - {nomatch("author_name")} | MISSES | DAMAGE
