"""npi-crawler: scraper, SQLite archive and change monitor for the Nakasone Peace Institute."""

__version__ = "0.1.0"
