"""Canned queries: SQL a researcher runs by name in Datasette (``npi-crawler serve``).

Kept here because every SQL statement of the project lives in archive/; research/datasette.py
puts them into Datasette's metadata. The Search page is no canned query: it runs ``npi-crawler
search`` itself (research/datasette_plugin.py), two-character Japanese terms and PDFs included.
"""

QUERIES = {
    "latest_policy_proposals": {
        "title": "Latest policy proposals",
        "description": "The 50 newest articles in the Policy Proposals list (政策提言), both languages.",
        "sql": (
            "select a.published, a.lang, a.title, a.url from articles a "
            "join article_sections s on s.article_url = a.url "
            "where s.section = 'policy' and a.removed_at is null "
            "order by a.published desc limit 50"
        ),
    },
    "articles_per_section_per_year": {
        "title": "Articles per section per year",
        "description": "How much NPI published in each list, year by year.",
        "sql": (
            "select s.section, substr(a.published, 1, 4) as year, count(*) as articles "
            "from articles a join article_sections s on s.article_url = a.url "
            "where a.removed_at is null group by s.section, year order by s.section, year desc"
        ),
    },
    "recently_changed": {
        "title": "Recently changed",
        "description": "Articles edited or removed after they were first archived, latest first.",
        "sql": (
            "select a.last_changed, a.removed_at, a.title, a.url, "
            "(select count(*) from revisions r where r.article_url = a.url) as revisions "
            "from articles a where a.last_changed > a.first_seen or a.removed_at is not null "
            "order by coalesce(a.removed_at, a.last_changed) desc limit 100"
        ),
    },
}
