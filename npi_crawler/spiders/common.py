"""Small helpers the spider and its PDF fetcher share."""

from __future__ import annotations

from typing import Any

from scrapy.http import Response

# Set on a request that a stop signal dropped from the download queue (crawl.drop_queued_requests):
# its failure is the stop, recorded once as the run's status, not as an error of each request.
STOPPED_META = "npi_stopped"


def truthy(value: Any) -> bool:
    """A spider argument (always a string on the command line) read as a flag."""
    return str(value).lower() in ("1", "true", "yes", "on")


def header(response: Response, name: str) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None
