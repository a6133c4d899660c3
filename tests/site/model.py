"""The replica's description: a small, generated model of the NPI site.

A site is a set of articles (each with its sections, date, body blocks, authors and PDFs); every page
the replica serves is rendered from it (see ``render.py``). The model is also the test oracle:
``expected_export()`` says what a correct crawl must store, computed independently of the crawler.
"""

from __future__ import annotations

import copy
import hashlib
import random
from dataclasses import dataclass, field

SECTIONS = ("diplomacy", "industry", "economy", "technology", "government", "policy")

SECTION_NAMES = {
    "ja": {
        "diplomacy": "外交・安全保障",
        "industry": "経済安全保障・産業",
        "economy": "経済・社会",
        "technology": "科学技術",
        "government": "憲政",
        "policy": "政策提言",
    },
    "en": {
        "diplomacy": "Diplomacy and Security",
        "industry": "Industry and Trade",
        "economy": "Economy and Society",
        "technology": "Science and Technology",
        "government": "Constitutional Politics",
        "policy": "Policy Proposals",
    },
}

JA_WORDS = (
    "経済安全保障",
    "半導体",
    "サプライチェーン",
    "日米同盟",
    "インド太平洋",
    "憲法改正",
    "少子高齢化",
    "人工知能",
    "量子技術",
    "エネルギー",
    "財政",
    "防衛力",
    "中国",
    "台湾海峡",
    "朝鮮半島",
    "国際秩序",
    "デジタル",
    "宇宙",
    "気候変動",
    "通商政策",
    "研究会",
    "報告書",
    "提言",
    "地政学",
    "人口減少",
)
EN_WORDS = (
    "economic security",
    "semiconductors",
    "supply chains",
    "the Japan-US alliance",
    "the Indo-Pacific",
    "constitutional reform",
    "an ageing society",
    "artificial intelligence",
    "quantum technology",
    "energy",
    "fiscal policy",
    "defence capability",
    "China",
    "the Taiwan Strait",
    "the Korean Peninsula",
    "the international order",
    "digital policy",
    "space",
    "climate change",
    "trade policy",
)
# What the real site's robots.txt disallows (nothing the crawler needs).
ROBOTS = "User-agent: *\nDisallow: /cgi-bin/\nDisallow: /mt/\n"
# The text of a PDF the replica serves damaged (not a readable PDF): a warning for the crawler.
BROKEN_PDF = "<broken>"

JA_NAMES = ("中曽根 太郎", "山田 花子", "佐藤 健一", "鈴木 一郎", "高橋 直子", "田中 誠")
EN_NAMES = ("Taro Nakasone", "Hanako Yamada", "Kenichi Sato", "Ichiro Suzuki", "Naoko Takahashi")


EXPERT_TITLES = {
    "ja": ("上席研究員", "主任研究員", "研究顧問", "理事長"),
    "en": ("Senior Research Fellow", "Research Fellow", "Research Adviser", "President"),
}


@dataclass
class Expert:
    """An expert's page, derived from an author's name (no random draws: generated sites stay
    the same). ``title`` is the position the page gives (``position`` when a test set one);
    ``areas`` two section names."""

    path: str
    name: str
    position: str | None = None
    shows_position: bool = True  # False: the page gives no position at all (Site.expert_positions)

    @property
    def lang(self) -> str:
        return "en" if self.path.startswith("/en/") else "ja"

    def _pick(self, options: tuple[str, ...], salt: str = "") -> str:
        digest = hashlib.sha1((self.name + salt).encode()).digest()
        return options[digest[0] % len(options)]

    @property
    def title(self) -> str:
        return self.position or self._pick(EXPERT_TITLES[self.lang])

    @property
    def areas(self) -> list[str]:
        names = tuple(SECTION_NAMES[self.lang].values())
        first = self._pick(names)
        return [first, self._pick(tuple(n for n in names if n != first), "2")]

    @property
    def biography(self) -> str:
        if self.lang == "ja":
            return f"{self.name}は外務省を経て{self.title}に就任。"
        return f"{self.name} joined NPI as {self.title} after serving at the Ministry of Foreign Affairs."


@dataclass
class Article:
    """One article as the site shows it. ``blocks`` are (kind, text) with kind p, h2, h4 or li."""

    path: str
    title: str
    date: str  # YYYY/MM/DD
    sections: list[str]
    blocks: list[tuple[str, str]]
    authors: list[tuple[str, str]] = field(default_factory=list)  # (name, expert page path)
    pdfs: list[str] = field(default_factory=list)  # root-relative paths
    pdf_texts: dict[str, str] = field(default_factory=dict)
    # Messy-page switches, as found on real sites.
    title_html: str | None = None  # raw HTML inside the title div (extra markup)
    show_date: bool = True  # False: the page carries no date at all
    empty_paragraph: bool = False  # an empty <p>&nbsp;</p> in the body
    version: int = 1  # bumped by edits; feeds ETag and Last-Modified

    @property
    def lang(self) -> str:
        return "en" if self.path.startswith("/en/") else "ja"

    @property
    def published(self) -> str:
        return self.date.replace("/", "-")

    def expected_body(self) -> str:
        """The body a correct parser extracts: one block per paragraph, whitespace folded."""
        texts = [" ".join(text.split()) for _kind, text in self.blocks]
        return "\n\n".join(t for t in texts if t)


@dataclass
class Site:
    """The whole replica: articles plus the knobs tests turn between runs."""

    articles: dict[str, Article]
    per_page: int = 5
    # "normal"; "redesign": the site changed its HTML (list and article pages, render.py names the new
    # markup in REDESIGN_SELECTORS); "redesign_lists": only the list pages changed;
    # "redesign-articles": only the article pages changed.
    layout: str = "normal"
    robots: str = ROBOTS  # the robots.txt the site serves
    removed: set[str] = field(default_factory=set)
    positions: dict[str, str] = field(default_factory=dict)  # expert page path -> a new position
    # Markup the real site also uses, every field still found by a documented way (a healthy site):
    # author links whose only text is the name (no .name element: the author_name key's fallback,
    # the link's text), and expert pages that give no position.
    plain_author_links: bool = False
    expert_positions: bool = True

    def expert(self, path: str) -> Expert | None:
        """The expert whose page is ``path``, if a live article names them."""
        for article in self.live():
            for name, expert_path in article.authors:
                if expert_path == path:
                    return Expert(path, name, self.positions.get(path), self.expert_positions)
        return None

    def live(self) -> list[Article]:
        return [a for p, a in self.articles.items() if p not in self.removed]

    def list_entries(self, lang: str, section: str) -> list[Article]:
        entries = [a for a in self.live() if a.lang == lang and section in a.sections]
        return sorted(entries, key=lambda a: (a.date, a.path), reverse=True)

    def list_pages(self, lang: str, section: str) -> list[list[Article]]:
        entries = self.list_entries(lang, section)
        pages = [entries[i : i + self.per_page] for i in range(0, len(entries), self.per_page)]
        return pages or [[]]

    # -- changes between runs ------------------------------------------------------------------
    def add(self, article: Article) -> Article:
        self.articles[article.path] = article
        return article

    def edit(self, path: str, *, title: str | None = None, append: str | None = None) -> Article:
        article = self.articles[path]
        if title is not None:
            article.title = title
            article.title_html = None
        if append is not None:
            article.blocks.append(("p", append))
        article.version += 1
        return article

    def remove(self, path: str) -> None:
        self.removed.add(path)

    def copy(self) -> Site:
        return copy.deepcopy(self)

    # -- the oracle -----------------------------------------------------------------------------
    def expected_export(self, base_url: str) -> list[dict]:
        base = base_url.rstrip("/")
        rows = []
        for a in self.live():
            if not any(self.list_entries(a.lang, s) for s in a.sections):
                continue
            rows.append(
                {
                    "url": base + a.path,
                    "lang": a.lang,
                    "title": " ".join(a.title.split()),
                    "published": a.published,
                    "sections": sorted(a.sections),
                    "authors": [name for name, _ in a.authors],
                    "body": a.expected_body(),
                    "pdfs": [base + p for p in a.pdfs],
                }
            )
        rows.sort(key=lambda r: r["url"])
        rows.sort(key=lambda r: r["published"], reverse=True)
        return rows


def _sentence(rng: random.Random, lang: str) -> str:
    if lang == "ja":
        words = rng.sample(JA_WORDS, 3)
        return f"{words[0]}をめぐる{words[1]}と{words[2]}の課題について検討した。"
    words = rng.sample(EN_WORDS, 3)
    return f"This paper examines {words[0]}, {words[1]} and {words[2]}."


def _title(rng: random.Random, lang: str, n: int) -> str:
    if lang == "ja":
        a, b = rng.sample(JA_WORDS, 2)
        return f"「{a}と{b}」第{n}回　研究会報告"
    a, b = rng.sample(EN_WORDS, 2)
    return f"{a.capitalize()} and {b}: Study Group Report No. {n}"


def make_article(
    rng: random.Random, lang: str, n: int, date: tuple[int, int, int], sections: list[str]
) -> Article:
    y, m, d = date
    stamp = f"{d:02d}{rng.randrange(24):02d}{rng.randrange(60):02d}{n % 60:02d}"
    prefix = "/en" if lang == "en" else ""
    path = f"{prefix}/research/{y}/{m:02d}/{stamp}.html"
    blocks: list[tuple[str, str]] = [("p", "\u3000" + _sentence(rng, lang)) for _ in range(rng.randint(2, 4))]
    if rng.random() < 0.4:
        blocks.insert(1, ("h2", _sentence(rng, lang)[:20]))
    if rng.random() < 0.3:
        blocks.extend(("li", _sentence(rng, lang)) for _ in range(2))
    if rng.random() < 0.3:
        blocks.append(("h4", "注" if lang == "ja" else "Notes"))
        blocks.append(("p", "\u3000" + _sentence(rng, lang)))
    names = JA_NAMES if lang == "ja" else EN_NAMES
    authors = [
        (name, f"{prefix}/experts/{hashlib.sha1(name.encode()).hexdigest()[:6]}.html")
        for name in rng.sample(names, rng.choice((0, 1, 1, 2)))
    ]
    pdfs = []
    pdf_texts = {}
    if rng.random() < 0.35:
        for _ in range(rng.choice((1, 1, 2))):
            digest = hashlib.sha1(f"{path}{len(pdfs)}".encode()).hexdigest()
            pdf = f"{prefix}/research/data/{digest}.pdf"
            pdfs.append(pdf)
            pdf_texts[pdf] = f"NPI report {n} on {rng.choice(EN_WORDS)} pdfonlyterm{n}"
    return Article(
        path=path,
        title=_title(rng, lang, n),
        date=f"{y}/{m:02d}/{d:02d}",
        sections=sections,
        blocks=blocks,
        authors=authors,
        pdfs=pdfs,
        pdf_texts=pdf_texts,
    )


def generate_site(seed: int = 1, n_articles: int = 60, per_page: int = 3) -> Site:
    """A random site of ``n_articles`` over both languages and all six sections.

    Every section gets at least one article per language; about one in five articles sits in two
    sections; a few pages are messy (extra markup in the title, no date, an empty paragraph).
    """
    rng = random.Random(seed)
    articles: dict[str, Article] = {}
    n = 0
    while len(articles) < n_articles:
        n += 1
        lang = "ja" if n % 2 else "en"
        first = SECTIONS[(n // 2) % len(SECTIONS)]
        sections = [first]
        if rng.random() < 0.22:
            sections.append(rng.choice([s for s in SECTIONS if s != first]))
        date = (rng.randint(2016, 2025), rng.randint(1, 12), rng.randint(1, 28))
        article = make_article(rng, lang, n, date, sections)
        articles.setdefault(article.path, article)
    ordered = list(articles.values())
    # Messy pages at fixed places so every generated site has them.
    ordered[3].title_html = _messy_title(ordered[3].title)
    ordered[5].show_date = False
    ordered[7].empty_paragraph = True
    if len(ordered) > 9:  # one damaged PDF
        broken = ordered[9].path.rsplit("/", 1)[0] + "/broken.pdf"
        broken = broken.replace("/research/", "/research/data/", 1)
        ordered[9].pdfs.append(broken)
        ordered[9].pdf_texts[broken] = BROKEN_PDF
    return Site(articles=articles, per_page=per_page)


def _messy_title(title: str) -> str:
    """The same title wrapped in inline markup and a stray line break between tags."""
    k = len(title) // 2
    return f'<strong>{title[:k]}</strong><span class="sub">{title[k:]}</span>\n'


def new_article(site: Site, *, lang: str, sections: list[str], n: int, seed: int = 99) -> Article:
    """An article dated after everything on ``site``, as a newly published one would be."""
    rng = random.Random(seed * 1000 + n)
    return add_unique(site, make_article(rng, lang, 1000 + n, (2026, 11, min(28, 20 + n % 8)), sections))


def add_unique(site: Site, article: Article) -> Article:
    """Add ``article`` under a path no other article has (a generated stamp may repeat one)."""
    while article.path in site.articles:
        article.path = article.path.replace(".html", "1.html")
    return site.add(article)
