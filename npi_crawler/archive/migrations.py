"""The archive's schema, as named migration steps recorded in the ``migrations`` table.

Append-only: a step, once released, is never edited; a new step changes what came before. Each
step runs in its own transaction with its ``migrations`` row, so a failing step leaves nothing.
Schema creation goes through sqlite-utils (tables, indexes, FTS5 with triggers). The steps are in
the file in the order they run; ``MIGRATIONS`` lists them and ``Archive.open`` passes it to
``migrate_archive``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlite_utils

from npi_crawler.archive.db import ArchiveBase, not_an_archive
from npi_crawler.archive.searchindex import AUTOMERGE, create_folded_indexes
from npi_crawler.errors import ArchiveError
from npi_crawler.site import SECTION_NAMES, SECTIONS


def _cols(spec: str) -> dict[str, type]:
    """``"id int, title str"`` -> ``{"id": int, "title": str}``: a table's columns, in order."""
    kinds = {"int": int, "str": str}
    return {name: kinds[kind] for name, kind in (column.split() for column in spec.split(", "))}


def _m001_initial(db: sqlite_utils.Database) -> None:
    db.table("sections").create({"slug": str, "name_ja": str, "name_en": str}, pk="slug")
    db.table("sections").insert_all(
        [{"slug": s, "name_ja": SECTION_NAMES[s][0], "name_en": SECTION_NAMES[s][1]} for s in SECTIONS]
    )
    db.table("runs").create(
        _cols(
            "id int, started str, finished str, mode str, base_url str, langs str, sections str, "
            "status str, requests int, responses int, list_pages int, articles_new int, "
            "articles_updated int, articles_unchanged int, articles_not_modified int, "
            "articles_removed int, errors int, warnings int, stats str"
        ),
        pk="id",
        not_null={"started", "mode", "status"},
        defaults={"status": "running"},
    )
    db.table("articles").create(
        _cols(
            "url str, lang str, title str, published str, body str, content_hash str, first_seen str, "
            "last_seen str, last_fetched str, last_changed str, first_run_id int, etag str, "
            "last_modified str, removed_at str, removed_status int, parse_notes str"
        ),
        pk="url",
        not_null={"lang", "first_seen", "last_seen"},
        foreign_keys=[("first_run_id", "runs", "id")],
    )
    db.table("article_sections").create(
        {"article_url": str, "section": str, "first_seen": str, "last_seen": str, "first_run_id": int},
        pk=("article_url", "section"),
        foreign_keys=[("section", "sections", "slug")],
    )
    db.table("authors").create(
        {"article_url": str, "position": int, "name": str, "profile_url": str},
        pk=("article_url", "position"),
        foreign_keys=[("article_url", "articles", "url")],
    )
    db.table("pdfs").create(
        {"article_url": str, "url": str, "position": int},
        pk=("article_url", "url"),
        foreign_keys=[("article_url", "articles", "url")],
    )
    db.table("revisions").create(
        _cols(
            "id int, article_url str, run_id int, replaced_at str, title str, published str, body "
            "str, pdfs str, authors str, content_hash str"
        ),
        pk="id",
        foreign_keys=[("article_url", "articles", "url"), ("run_id", "runs", "id")],
    )
    db.table("run_errors").create(
        {"id": int, "run_id": int, "at": str, "url": str, "kind": str, "message": str},
        pk="id",
        foreign_keys=[("run_id", "runs", "id")],
    )
    _m001_indexes(db)


def _m001_indexes(db: sqlite_utils.Database) -> None:
    db.table("articles").create_index(["published"])
    db.table("articles").create_index(["lang", "published"])
    db.table("articles").create_index(["first_run_id"])
    db.table("article_sections").create_index(["section"])
    db.table("revisions").create_index(["article_url"])
    db.table("revisions").create_index(["run_id"])
    db.table("run_errors").create_index(["run_id"])
    # trigram: FTS5's default tokenizer does not split Japanese, which has no spaces between
    # words; trigrams match any substring of three or more characters in either language.
    db.table("articles").enable_fts(["title", "body"], create_triggers=True, tokenize="trigram")


def _m002_change_monitor(db: sqlite_utils.Database) -> None:
    """The change monitor (issue 4): events the differ found, the scopes it watches, the outbox of
    alerts and their per-channel deliveries. See docs/alerts.md."""
    db.execute("ALTER TABLE runs ADD COLUMN diffed_at TEXT")
    db.execute("ALTER TABLE runs ADD COLUMN diff_outcome TEXT")
    db.table("events").create(
        _cols(
            "id int, at str, run_id int, kind str, article_url str, lang str, title str, sections "
            "str, revision_id int, removed_at str, alerted int"
        ),
        pk="id",
        not_null={"at", "kind", "article_url"},
    )
    # The differ finds events by what has no event yet; this index makes each fact an event once.
    db.execute(
        "CREATE UNIQUE INDEX events_once ON events "
        "(kind, article_url, coalesce(revision_id, 0), coalesce(removed_at, ''))"
    )
    db.table("events").create_index(["run_id"])
    db.table("watch_scopes").create(
        {"lang": str, "section": str, "since": str, "baseline_event_id": int}, pk=("lang", "section")
    )
    db.table("alerts").create(
        _cols(
            "id int, created str, run_id int, kind str, event_id int, article_url str, title str, "
            "body str, tags str, status str, attempts int, last_error str, last_attempt str, sent_at "
            "str"
        ),
        pk="id",
        not_null={"created", "kind", "title", "status"},
        defaults={"status": "pending", "attempts": 0},
    )
    db.table("alerts").create_index(["status"])
    db.table("deliveries").create(
        _cols(
            "alert_id int, channel str, label str, status str, attempts int, last_error str, "
            "last_attempt str, sent_at str, claimed_by str"
        ),
        pk=("alert_id", "channel"),
        foreign_keys=[("alert_id", "alerts", "id")],
    )


def _m003_research(db: sqlite_utils.Database) -> None:
    """PDF text (issue 5): one row per PDF URL, searchable through its own trigram FTS5 index."""
    db.table("pdf_texts").create(
        _cols(
            "url str, status str, error str, etag str, last_modified str, content_type str, size int, "
            "sha256 str, pages int, text str, first_fetched str, last_fetched str, run_id int"
        ),
        pk="url",
        not_null={"status"},
    )
    db.table("pdfs").create_index(["url"])
    db.table("pdf_texts").enable_fts(["text"], create_triggers=True, tokenize="trigram")


def _m004_rules_and_holds(db: sqlite_utils.Database) -> None:
    """Watcher rules and held alerts (issues 11 and 10): the rules watched so far and their
    baselines, events that join a section (``section``) or are held by the layout alarm
    (``held_at``, ``released_at``), and the rules an alert names."""
    db.table("watch_rules").create({"name": str, "since": str, "baseline_event_id": int}, pk="name")
    for column in ("section", "held_at", "released_at"):
        db.execute(f"ALTER TABLE events ADD COLUMN {column} TEXT")
    # One `joined` event per (article, section): the section is part of what makes a fact once.
    db.execute("DROP INDEX events_once")
    db.execute(
        "CREATE UNIQUE INDEX events_once ON events "
        "(kind, article_url, coalesce(revision_id, 0), coalesce(removed_at, ''), coalesce(section, ''))"
    )
    db.execute("ALTER TABLE alerts ADD COLUMN rules TEXT")
    db.table("alerts").create_index(["article_url"])
    # Sections an article joined after its first diff, before this version watched for joins:
    # recorded as already alerted, so an upgrade announces none of that past.
    db.execute(
        "INSERT INTO events (at, run_id, kind, article_url, lang, title, sections, section, alerted) "
        "SELECT strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), s.first_run_id, 'joined', e.article_url, e.lang, "
        "e.title, e.sections, s.section, 1 FROM events e "
        "JOIN article_sections s ON s.article_url = e.article_url "
        "WHERE e.kind = 'new' AND s.section NOT IN (SELECT value FROM json_each(e.sections))"
    )


# -- 005: the English word index (issue 12) --------------------------------------------------------
# FTS5's porter stemmer over unicode61 (diacritics folded), beside the trigram indexes: "sanction"
# finds sanctions, sanctioned and sanctioning, and a word never matches inside another ("ally" is
# not found in "finally"). Token characters: letters except Lo (kana) and Lm (ー, 々), digits,
# private use. Kana are then separators, so a Latin word written against kana (NATOの, AIを) is a
# word of its own; SQLite's unicode61 keeps CJK ideographs as token characters whatever the
# categories say, so Japanese text adds only its kanji runs to this index. Japanese is searched
# through the trigram indexes, as before.
_WORD_TOKENIZE = "porter unicode61 remove_diacritics 2 categories 'Lu Ll Lt Nd Nl No Co'"


def _update_trigger(db: sqlite_utils.Database, trigger: str, index: str, table: str, columns: list[str]) -> None:
    """Re-index a row of ``table`` in the external-content FTS5 ``index`` when its text changes.

    Only then: sqlite-utils' update trigger re-indexes on EVERY update, and runs update last_seen
    of every article they see (and last_fetched of every PDF a --full run re-checks): 200-275 us
    an update on 100,000 articles, against 17-22 us when only a change of the text re-indexes."""
    cols = ", ".join(columns)
    new = ", ".join(f"new.{c}" for c in columns)
    old = ", ".join(f"old.{c}" for c in columns)
    changed = " OR ".join(f"old.{c} IS NOT new.{c}" for c in columns)
    db.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    db.execute(
        f"CREATE TRIGGER {trigger} AFTER UPDATE OF {cols} ON {table} WHEN {changed} BEGIN "
        f"INSERT INTO {index} ({index}, rowid, {cols}) VALUES ('delete', old.rowid, {old}); "
        f"INSERT INTO {index} (rowid, {cols}) VALUES (new.rowid, {new}); END"
    )


def _word_table(db: sqlite_utils.Database, name: str, table: str, columns: list[str]) -> None:
    """An external-content FTS5 table over ``table``'s ``columns``, kept in sync by triggers."""
    cols = ", ".join(columns)
    new = ", ".join(f"new.{c}" for c in columns)
    old = ", ".join(f"old.{c}" for c in columns)
    # content='...' in single quotes: Datasette's and sqlite-utils' detect_fts match content="..."
    # or content=[...] only, so the table's search box and table.search() keep the trigram index.
    db.execute(
        f"CREATE VIRTUAL TABLE {name} USING fts5({cols}, content='{table}', content_rowid='rowid', "
        f'tokenize="{_WORD_TOKENIZE}")'
    )
    db.execute(
        f"CREATE TRIGGER {name}_ai AFTER INSERT ON {table} BEGIN "
        f"INSERT INTO {name} (rowid, {cols}) VALUES (new.rowid, {new}); END"
    )
    db.execute(
        f"CREATE TRIGGER {name}_ad AFTER DELETE ON {table} BEGIN "
        f"INSERT INTO {name} ({name}, rowid, {cols}) VALUES ('delete', old.rowid, {old}); END"
    )
    _update_trigger(db, f"{name}_au", name, table, columns)
    db.execute(f"INSERT INTO {name} ({name}) VALUES ('rebuild')")


def _m005_word_index(db: sqlite_utils.Database) -> None:
    """English word search: ``articles_words`` (title, body) and ``pdf_texts_words`` (text),
    ranked by bm25 through FTS5's ``rank``, the title weighted 10 to 1 as in the trigram ranking.
    The trigram indexes' update triggers (sqlite-utils') are replaced by ones that re-index only
    when the text changes."""
    _word_table(db, "articles_words", "articles", ["title", "body"])
    _word_table(db, "pdf_texts_words", "pdf_texts", ["text"])
    db.execute("INSERT INTO articles_words (articles_words, rank) VALUES ('rank', 'bm25(10.0, 1.0)')")
    _update_trigger(db, "articles_au", "articles_fts", "articles", ["title", "body"])
    _update_trigger(db, "pdf_texts_au", "pdf_texts_fts", "pdf_texts", ["text"])


def _m006_warc(db: sqlite_utils.Database) -> None:
    """The pages as served (issue 12): the WARC files the crawl wrote and, per fetch it archived,
    where its record is. See docs/schema.md and docs/research.md#the-pages-as-served-warc."""
    db.table("warc_files").create(
        {"filename": str, "directory": str, "run_id": int, "created": str},
        pk="filename",
        not_null={"directory"},
        foreign_keys=[("run_id", "runs", "id")],
    )
    db.table("warc_records").create(
        _cols(
            "id int, url str, kind str, record_type str, status int, content_hash str, filename str, "
            "file_offset int, record_length int, payload_digest str, record_id str, refers_to str, "
            "captured str, run_id int"
        ),
        pk="id",
        not_null={"url", "kind", "record_type", "filename", "file_offset", "record_length", "record_id", "captured"},
        foreign_keys=[("filename", "warc_files", "filename"), ("run_id", "runs", "id")],
    )
    db.table("warc_records").create_index(["url", "captured"])
    db.table("warc_records").create_index(["record_id"], unique=True)
    db.table("warc_records").create_index(["run_id"])


def _m007_experts(db: sqlite_utils.Database) -> None:
    """The expert pages articles link to (issue 12): one row per page, keyed by the URL that
    ``authors.profile_url`` holds, which is the link between an article and its experts."""
    db.table("experts").create(
        _cols(
            "url str, lang str, name str, title str, areas str, biography str, status str, error str, "
            "etag str, last_modified str, first_fetched str, last_fetched str, last_changed str, run_id int, "
            "parse_notes str"
        ),
        pk="url",
        not_null={"status"},
    )
    db.table("authors").create_index(["profile_url"])


# The full-text indexes of the archive (trigram and word indexes, migrations 001, 003 and 005).
FTS_INDEXES = ("articles_fts", "pdf_texts_fts", "articles_words", "pdf_texts_words")


def _m008_fts_merge(db: sqlite_utils.Database) -> None:
    """Merge the full-text indexes' segments 16 at a time instead of 4 (FTS5's ``automerge``,
    kept in each index's config table): every commit adds a segment to each index, and merging
    them 4 at a time rewrote the postings of a run's articles again and again. On 40 runs of 25
    new articles over 1,000: 23% fewer pages written and 30% less CPU, queries as fast (issue
    19; docs/performance.md). Past 16 segments on a level FTS5 merges them at once
    (``crisismerge``, 16 by default)."""
    for index in FTS_INDEXES:
        db.execute(f"INSERT INTO {index} ({index}, rank) VALUES ('automerge', {AUTOMERGE})")


def _m008b_parse_health(db: sqlite_utils.Database) -> None:
    """A run's parse health as data (issue 18): its article pages (``runs.article_pages``) and,
    per parser note, on how many pages it was noted (``run_parse_notes``), where the layout alarm
    parsed them back out of the JSON stats. Earlier runs get theirs from their stats."""
    db.execute("ALTER TABLE runs ADD COLUMN article_pages INTEGER")
    db.table("run_parse_notes").create(
        {"run_id": int, "note": str, "pages": int},
        pk=("run_id", "note"),
        not_null={"pages"},
        foreign_keys=[("run_id", "runs", "id")],
    )
    db.execute(
        "UPDATE runs SET article_pages = json_extract(stats, '$.\"npi/article/pages\"') "
        "WHERE json_valid(stats)"
    )
    db.execute(
        "INSERT INTO run_parse_notes (run_id, note, pages) SELECT r.id, substr(j.key, 11), j.value "
        "FROM runs r, json_each(r.stats) j WHERE json_valid(r.stats) AND j.key LIKE 'npi/parse/%' "
        "AND j.type = 'integer' AND j.value > 0"
    )


def _m010_channel_ids(db: sqlite_utils.Database) -> None:
    """Channel ids under the archive's channel key (issue 23.8; archive/channelkey.py). An older
    version stored 16 hex digits of an unsalted SHA-256 of the channel's URL, from which the URL
    (its secrets) could be recovered offline by guessing. Each stored id becomes the HMAC of itself
    under the key, which is how a channel's id is now made from its URL: every delivery keeps its
    channel (nothing is sent twice), configured or not, and no old id stays in the file."""
    from npi_crawler.archive.channelkey import channel_id, channel_key

    if db.execute("SELECT 1 FROM deliveries LIMIT 1").fetchone() is None:
        return  # nothing to rekey: the key is made when a channel first needs an id
    path = db.execute("PRAGMA database_list").fetchone()[2]
    key = channel_key(path)
    db.conn.create_function("npi_channel_id", 1, lambda old: channel_id(key, old), deterministic=True)
    db.execute("UPDATE deliveries SET channel = npi_channel_id(channel)")


def _m011_outbox_facts(db: sqlite_utils.Database) -> None:
    """The outbox's facts as data (issue 18). ``deliveries.announces``: the article a delivery of
    an announcing alert (``new``, ``joined``) gives its channel, and ONE unique index that lets an
    article be sent (or being sent, or sent without an answer) to a channel once, whichever alert
    announces it; before, the differ, the outbox and delivery each checked it in their own way.
    ``alerts.parts``: a flood summary's explanation, items and count of the rest (JSON), which
    delivery fits to a channel instead of reading its text back. A flood summary queued before
    this step has none and is fitted as any message is."""
    db.execute("ALTER TABLE deliveries ADD COLUMN announces TEXT")
    db.execute("ALTER TABLE alerts ADD COLUMN parts TEXT")
    db.execute(
        "UPDATE deliveries SET announces = (SELECT a.article_url FROM alerts a WHERE a.id = deliveries.alert_id "
        "AND a.kind IN ('new', 'joined'))"
    )
    # What the index would refuse, kept as history: a stale claim gives way (its alert then finds
    # the article delivered), a later repeat keeps its row without the fact.
    later = (
        "announces IS NOT NULL AND status IN ('sending', 'sent', 'unknown') AND EXISTS (SELECT 1 FROM deliveries d "
        "WHERE d.announces = deliveries.announces AND d.channel = deliveries.channel "
        "AND d.status IN ('sending', 'sent', 'unknown') AND d.alert_id < deliveries.alert_id)"
    )
    db.execute(f"UPDATE deliveries SET status = 'failed', last_error = 'claim lapsed' WHERE status = 'sending' AND {later}")
    db.execute(f"UPDATE deliveries SET announces = NULL WHERE {later}")
    db.execute(
        "CREATE UNIQUE INDEX deliveries_announced_once ON deliveries (announces, channel) "
        "WHERE announces IS NOT NULL AND status IN ('sending', 'sent', 'unknown')"
    )


def _m012_list_pages(db: sqlite_utils.Database) -> None:
    """What a check that finds nothing needs, so that it costs almost nothing (issue 20):
    ``list_pages``, each list page's validators (ETag, Last-Modified) and the digest of its last
    200 answer, asked with a conditional GET by every run (first pages) and by the rolling sweep
    (deeper pages); ``robots_txt``, robots.txt as last answered, asked again conditionally once a
    day; ``runs.retry_after``, the time before which the site asked (429/503 with ``Retry-After``)
    to get no request. The sweep's position rides in each run's stats (``npi/sweep/*``), the
    check's answers that changed nothing are written nowhere."""
    db.table("list_pages").create(
        _cols("url str, lang str, section str, page int, etag str, last_modified str, digest str, changed_at str, run_id int"),
        pk="url",
        not_null={"lang", "section", "page"},
    )
    db.table("robots_txt").create(
        _cols("url str, status int, body str, etag str, last_modified str, fetched_at str"), pk="url"
    )
    db.execute("ALTER TABLE runs ADD COLUMN retry_after TEXT")


def _m014_run_outcomes(db: sqlite_utils.Database) -> None:
    """What a run leaves behind it (issue 23.1, 23.5), two columns.

    ``watch_scopes`` and ``watch_rules`` get the run each baseline covers: an article listed by
    then belongs to that baseline even if its page could not be read then, so it is never
    alerted as new once it can. An older baseline covers the runs diffed by the time it was taken.

    ``runs.problem``: why a run is not ok, in one line. ``status`` and ``doctor`` said "no list
    page answered" of every failed run, a full disk included, and nothing of a run that lost its
    WARC records. An older failed run gets the archive's refusal its stats kept, the unreachable
    site's message, or what a failed run meant then."""
    for table in ("watch_scopes", "watch_rules"):
        db.execute(f"ALTER TABLE {table} ADD COLUMN baseline_run_id INTEGER")
        db.execute(
            f"UPDATE {table} SET baseline_run_id = (SELECT max(id) FROM runs "
            f"WHERE diffed_at IS NOT NULL AND diffed_at <= {table}.since)"
        )
    db.execute("ALTER TABLE runs ADD COLUMN problem TEXT")
    db.execute(
        "UPDATE runs SET problem = coalesce(json_extract(stats, '$.\"npi/archive/error\"'), "
        "(SELECT message FROM run_errors e WHERE e.run_id = runs.id AND e.kind = 'site:unreachable' LIMIT 1), "
        "'no list page answered') WHERE status = 'failed'"
    )


def _m015_author_names(db: sqlite_utils.Database) -> None:
    """An index of the authors' names as articles list them (issue 22): ``search --author`` lists
    an author's articles through it, one seek per distinct name, instead of checking the authors
    of every article that matches the query (130 ms for a common word on 100,000 articles).
    Only an index is added; no row changes."""
    db.execute("CREATE INDEX IF NOT EXISTS authors_name ON authors (name, article_url)")


# Append-only: a step, once released, is never edited; a new step changes what came before.
Migration = tuple[str, Callable[[sqlite_utils.Database], None]]
MIGRATIONS: list[Migration] = [
    ("001_initial", _m001_initial),
    ("002_change_monitor", _m002_change_monitor),
    ("003_research", _m003_research),
    ("004_rules_and_holds", _m004_rules_and_holds),
    ("005_word_index", _m005_word_index),
    ("006_warc", _m006_warc),
    ("007_experts", _m007_experts),
    ("008_fts_merge", _m008_fts_merge),
    ("008b_parse_health", _m008b_parse_health),
    ("009_folded_search", lambda db: create_folded_indexes(db.conn)),
    ("010_channel_ids", _m010_channel_ids),
    ("011_outbox_facts", _m011_outbox_facts),
    ("012_list_pages", _m012_list_pages),
    ("014_run_outcomes", _m014_run_outcomes),
    ("015_author_names", _m015_author_names),
]
SCHEMA_VERSION = len(MIGRATIONS)


def applied_migrations(archive: ArchiveBase) -> list[str]:
    if not archive.db["migrations"].exists():
        return []
    return [r[0] for r in archive.conn.execute("SELECT name FROM migrations ORDER BY name")]


def _is_foreign(archive: ArchiveBase, applied: list[str]) -> bool:
    existing = set(archive.db.table_names())
    return not applied and bool(existing - {"migrations"}) and "articles" not in existing


def migrate_archive(archive: ArchiveBase, migrations: Sequence[Migration]) -> list[str]:
    """Apply every step of ``migrations`` (in their order) this archive has not had yet; returns
    their names."""
    applied = set(applied_migrations(archive))
    if _is_foreign(archive, list(applied)):
        raise not_an_archive(archive.path)
    done = []
    for name, step in migrations:
        if name in applied:
            continue
        with archive.atomic() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
            step(archive.db)
            conn.execute(
                "INSERT INTO migrations (name, applied_at) VALUES (:name, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))",
                {"name": name},
            )
        done.append(name)
    return done


def check_readable(archive: ArchiveBase, migrations: Sequence[Migration]) -> None:
    """What a read-only command needs: an npi-crawler archive with every step of ``migrations``.
    Nothing is created or migrated; an archive made by an older version is one line saying what
    to run."""
    applied = applied_migrations(archive)
    if "articles" not in archive.db.table_names():
        raise ArchiveError(
            f"{archive.path} is not an npi-crawler archive (no articles table); give --db an archive"
            " made by 'npi-crawler crawl'"
        )
    missing = [name for name, _ in migrations if name not in applied]
    if missing:
        raise ArchiveError(
            f"{archive.path} was made by an older npi-crawler (missing {', '.join(missing)}); "
            f"upgrade it with 'npi-crawler migrate --db {archive.path}'"
        )
