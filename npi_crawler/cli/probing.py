"""What a crawl sends the site, for the commands that fetch outside a crawl (doctor)."""

from __future__ import annotations

from npi_crawler.cli.runtime import file_settings
from npi_crawler.constants import DEFAULT_CONTACT, user_agent


def crawl_identity(contact: str | None) -> tuple[str, str]:
    """(contact, User-Agent) as a crawl would send them: --contact/NPI_CONTACT or the settings
    file's ``contact``, then ``[scrapy] NPI_CONTACT``; a ``[scrapy] USER_AGENT`` wins over both."""
    settings = file_settings()
    contact = contact or settings.value("crawl", "contact") or settings.scrapy.get("NPI_CONTACT") or DEFAULT_CONTACT
    return contact, settings.scrapy.get("USER_AGENT") or user_agent(contact)
