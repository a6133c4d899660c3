"""The researcher's readers over the archive: full-text search, Atom feeds, version history and
Datasette. Read-only: they open the archive with ``readonly=True`` and never write to it."""
