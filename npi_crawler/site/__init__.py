"""Everything about npi.or.jp, with no Scrapy in it: its URLs, its text, its pages as data.

The facts here (sections, languages, host names, the base URL) are read by every layer: the
CLI, the archive, the parser, the spider. This file imports nothing, so ``npi-crawler --help``
does not pay for lxml. The rest, one module each (README.md, Layout):

- ``urls``, ``text``, ``notes``: URLs, text and dates, parse-note names (standard library only)
- ``decoding``: a page's bytes to text
- ``tree``, ``lists``, ``articles``, ``experts``: the page kinds, HTML to plain data (lxml)
- ``profile``: every selector the page readers use, as data a user can override
- ``pdftext``: a PDF's text layer (the only module that imports pypdf)
"""

from __future__ import annotations

SECTIONS: tuple[str, ...] = ("diplomacy", "industry", "economy", "technology", "government", "policy")
LANGS: tuple[str, ...] = ("ja", "en")
# The two host names of the one site (shared/npi-site.md): folded into one in every stored URL.
NPI_HOSTS = frozenset({"npi.or.jp", "www.npi.or.jp"})
DEFAULT_BASE_URL = "https://npi.or.jp/"

# slug -> (Japanese name, English name), as the site's own list headings say.
SECTION_NAMES: dict[str, tuple[str, str]] = {
    "diplomacy": ("外交・安全保障", "Diplomacy and Security"),
    "industry": ("経済安全保障・産業", "Industry and Trade"),
    "economy": ("経済・社会", "Economy and Society"),
    "technology": ("科学技術", "Science and Technology"),
    "government": ("憲政", "Constitutional Politics"),
    "policy": ("政策提言", "Policy Proposals"),
}
