"""Scrapy settings and every NPI_* default, in one place.

The defaults are for the live site: polite, robots.txt-obeying, throttled. Override them with
``-s NAME=VALUE`` on the command line (``npi-crawler crawl -s DOWNLOAD_DELAY=5``), or ``scrapy crawl
npi -s ...`` under Scrapyd.
"""

from npi_crawler import __version__
from npi_crawler.constants import DEFAULT_CONTACT, user_agent

BOT_NAME = "npi_crawler"
SPIDER_MODULES = ["npi_crawler.spiders"]
NEWSPIDER_MODULE = "npi_crawler.spiders"

# -- what to crawl -------------------------------------------------------------------------------
NPI_BASE_URL = "https://npi.or.jp/"
NPI_DB_PATH = "npi.db"
# Hosts that are the same site as NPI_BASE_URL's; the base URL's own host is always allowed too.
NPI_ALLOWED_DOMAINS = ["npi.or.jp", "www.npi.or.jp"]
# Drop an article item that has no publication date at all (no heading date, none in the URL).
NPI_REQUIRE_DATE = False
# A known article whose page now parses only through fallbacks (title from og:title or <title>,
# no #main, no body) where its stored version did not keeps the stored version: a changed layout
# must not overwrite the archive with garbage. The re-fetch is counted as npi/articles/degraded_kept.
NPI_KEEP_CLEAN_VERSION = True
# The site profile: profile key -> list of CSS selectors (or "xpath:..."), replacing the defaults
# of npi_crawler/site/profile.py key by key (docs/configuration.md#selectors). The settings file's
# [selectors] table sets it; under plain Scrapy: -s 'NPI_SELECTORS={"title": ["h1.post-title"]}'.
NPI_SELECTORS: dict[str, list[str]] = {}
# Stop following a list's pagination at the first page that holds nothing new (incremental runs).
NPI_STOP_AT_KNOWN_PAGE = True
# The rolling sweep (docs/operations.md#the-rolling-sweep): each incremental run re-checks, with
# conditional GETs, this many of the least recently checked list pages beyond the first pages, and
# this many known articles; what it finds is handled as a --full run would (a back-dated article,
# an edit, a removal). Per run, on average (2.5: 2 and 3 in turn). For the recommended schedule
# (every 5 minutes) and a site of the live site's size: every list page within 6 hours, every
# article within 7 days, under 200 requests an hour with the 12 first pages. ``--sweep-lists`` and
# ``--sweep-articles`` (settings-file keys sweep_lists, sweep_articles) set them for a run.
NPI_SWEEP_LISTS = 2.5
NPI_SWEEP_ARTICLES = 1.5
# At most this many articles not yet in the archive are requested in one run (0: no cap). A first
# crawl of the whole site stays under it; a list of 100,000 links (a broken or hostile page) does
# not: past the cap the run records a run:max_new_articles error and the next runs fetch the rest,
# this many at a time.
NPI_MAX_NEW_ARTICLES = 10_000
# A stop signal (Ctrl-C, SIGTERM) ends a crawl gracefully (no new request) and, when the requests
# in flight and the queued ones would take longer than this many seconds, at once. Either way the
# run is recorded as interrupted and nothing is half-written (docs/operations.md#stopping-a-run).
NPI_STOP_GRACE = 10.0
# Take the archive's run lock (<db>.lock) for a crawl started by plain Scrapy or Scrapyd; a second
# run on the same archive then does not start. npi-crawler's commands hold it themselves.
NPI_RUN_LOCK = True
# A progress line on standard error while the run goes (npi-crawler sets it when that is a terminal).
NPI_PROGRESS = False
# The crawl's writes are committed in batches (docs/operations.md#what-a-kill-loses): one
# transaction holds up to this many items (articles, list pages, PDFs, expert pages, 304s,
# errors) or this many seconds of them, whichever comes first; and is committed at the end of the
# run and at a stop. A SIGKILL or a power cut loses the open batch, which the next run fetches
# again. One transaction per item wrote 16-57 times what the archive grew by (docs/performance.md).
# The write lock is held while a batch is open: keep the seconds well under the 30 s busy timeout.
NPI_COMMIT_ITEMS = 2000
NPI_COMMIT_SECONDS = 10.0

# Download the PDFs articles link to (on the site's hosts only) and archive their text;
# ``crawl --no-pdfs`` or the spider argument ``-a pdfs=0`` switch it off for one run.
NPI_PDFS = True
# The largest PDF downloaded (bytes); a larger one is skipped with a warning.
NPI_PDF_MAXSIZE = 50 * 1024 * 1024
# Fetch the expert pages articles link to (name, position, areas; the `experts` table), once
# each, re-checked by --full runs; ``-a experts=0`` switches it off for one run.
NPI_EXPERTS = True

# The pages as served, kept as WARC 1.1 files (docs/research.md#the-pages-as-served-warc): every
# article page, PDF and changed list page a run fetches; ``crawl --no-warc`` switches it off for
# one run. About 3.7 KB per article on a first crawl and 2.2 KB per article per --full re-check.
NPI_WARC = True
# The WARC folder; empty: ``<archive stem>-warc/`` beside NPI_DB_PATH (npi.db -> npi-warc/).
NPI_WARC_DIR = ""
# A WARC file is closed and a new one begun before it would grow past this many bytes.
NPI_WARC_MAX_SIZE = 100_000_000

# -- politeness (safe for the live site) ---------------------------------------------------------
# Your URL or e-mail address, shown in the User-Agent (npi-crawler --contact, contact in the settings
# file, or -s NPI_CONTACT=...). The default, the project's page, is a placeholder doctor warns about.
NPI_CONTACT = DEFAULT_CONTACT
# Built from NPI_CONTACT (the spider rebuilds it when NPI_CONTACT is set and this is left as is).
USER_AGENT = user_agent(NPI_CONTACT, __version__)
ROBOTSTXT_OBEY = True
CONCURRENT_REQUESTS = 4
CONCURRENT_REQUESTS_PER_DOMAIN = 2
DOWNLOAD_DELAY = 1.0
DOWNLOAD_DELAY_JITTER = 0.5  # each delay is DOWNLOAD_DELAY ± 50%
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0
DOWNLOAD_TIMEOUT = 30
# A page is a few hundred KB at most; anything far larger is not an NPI article.
DOWNLOAD_MAXSIZE = 20 * 1024 * 1024
DOWNLOAD_WARNSIZE = 5 * 1024 * 1024
RETRY_ENABLED = True
RETRY_TIMES = 3
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408, 429]
# The site's Retry-After is law: a 429/503 with it stops the run's requests at once, and every later
# run before that time sends nothing (exit 75); a wait longer than this many seconds (a day) counts
# as this long. ``--ignore-retry-after`` (NPI_IGNORE_RETRY_AFTER) runs anyway, for a person who knows
# better. A 429/503 without the header is retried as any 5xx (RETRY_TIMES).
NPI_RETRY_AFTER_CAP = 86_400
NPI_IGNORE_RETRY_AFTER = False
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
HTTPCACHE_ENABLED = False
REDIRECT_MAX_TIMES = 5

# -- the crawler's own speed (docs/performance.md, "Crawl against nginx") -----------------------------
# Scrapy 2.19 starts 1 + CONCURRENT_ITEMS asyncio tasks for every response, items or not. Our
# pipelines never wait, so items gain nothing from running side by side: 1 keeps them in order and
# cut the CPU per page by a quarter (3.77 -> 2.81 ms at 5,000 articles).
CONCURRENT_ITEMS = 1
# Scrapy re-reads and parses each generator callback's source (ast) to warn about `return value`,
# for every response; the tests cover our callbacks. Off: a further 7% of CPU per page.
WARN_ON_GENERATOR_RETURN_VALUE = False

# -- components ----------------------------------------------------------------------------------
DOWNLOADER_MIDDLEWARES = {
    # First: a page the check before the crawl already asked this run is read from its answer.
    "npi_crawler.middlewares.PlannedAnswerMiddleware": 50,
    # Scrapy's lets through the requests that wait for robots.txt (see npi_crawler/middlewares.py).
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
    "npi_crawler.middlewares.RobotsTxtMiddleware": 100,
    # Before RedirectMiddleware (600) sees the response: a redirect off the site is an error.
    "npi_crawler.middlewares.OffsiteRedirectMiddleware": 650,
    # Between the two: a redirect loop or chain past REDIRECT_MAX_TIMES is an error of the run.
    "npi_crawler.middlewares.RedirectLoopMiddleware": 640,
    # Sees a 429/503 just before RetryMiddleware (550) would retry it: Retry-After stops the run.
    "npi_crawler.middlewares.RetryAfterMiddleware": 560,
    # Below RetryMiddleware: writes each final answer (retried, redirected, decompressed) as WARC.
    "npi_crawler.warc_recorder.WarcRecorderMiddleware": 540,
}
ITEM_PIPELINES = {
    "npi_crawler.pipelines.ValidateArticlePipeline": 100,
    "npi_crawler.pipelines.ArchivePipeline": 300,
    "npi_crawler.pipelines.PdfTextPipeline": 400,
    # The WARC pointers of pages with no row of their own (list pages).
    "npi_crawler.pipelines.WarcPagePipeline": 450,
}

LOG_LEVEL = "INFO"
FEED_EXPORT_ENCODING = "utf-8"
REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"

# -- the change monitor (npi-crawler watch / notify / status; docs/alerts.md) ------------------
# Sections whose new articles are alerted when --section is not given.
NPI_WATCH_SECTIONS = ["policy"]
# Apprise tag of the channels that get "npi-crawler needs attention" (layout break).
NPI_ADMIN_TAG = "admin"
# Failed deliveries after which a pending alert is reported as stuck (it is still retried).
NPI_ALERT_MAX_ATTEMPTS = 5
# More article alerts than this from one diff are sent as ONE summary message (never a flood).
NPI_ALERT_FLOOD_LIMIT = 25
# Article pages a run must have fetched before "most pages lack a title/date" can trip the alarm.
NPI_LAYOUT_MIN_PAGES = 3

EXTENSIONS = {
    # One run per archive under plain Scrapy and Scrapyd too (a no-op under npi-crawler).
    "npi_crawler.extensions.RunLockExtension": 0,
    # The run: its row in `runs` (opened on spider_opened, finished on spider_closed, after
    # CoreStats, whose finish_reason and elapsed time it stores) and its batched archive writes.
    "npi_crawler.runstate.RunState": 100,
    # Off unless NPI_PROGRESS is true.
    "npi_crawler.extensions.ProgressLine": 500,
}
