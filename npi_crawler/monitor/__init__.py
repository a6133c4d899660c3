"""The change monitor: the differ, the outbox's delivery, channels, messages and health checks.

Plain functions over the archive, outside Scrapy's engine: they run the same after ``watch``,
``crawl``, plain ``scrapy crawl`` or a Scrapyd job. Apprise is imported by monitor.channels only.
"""
