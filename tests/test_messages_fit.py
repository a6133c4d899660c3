"""Messages fitted to their channel (monitor/messages_fit.py): pure cases, a property over random
messages and limits, the limits Apprise's own plugins declare, and real Apprise json:// posts to a
local endpoint that refuses (400) a message over N characters."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npi_crawler.monitor.channels import load_channels
from npi_crawler.monitor.messages_fit import (
    Limits,
    chosen_overflow,
    cut,
    fit,
    fit_list,
    fits,
    measure,
    pack,
)
from tests.endpoints import JsonSink

URL = "https://npi.or.jp/en/research/2025/06/30150000.html"
TITLE = "[NPI policy/en] Japan's Economic Security in the New Era: Surviving in an Age of Growing Uncertainty"
DISCORD = Limits(body=2000, title=250, shared=True)
TELEGRAM = Limits(body=4096, title=0)
SMS = Limits(body=160, title=0)
APRS = Limits(body=67, title=0)


def alert_body(excerpt_chars: int = 5000) -> str:
    excerpt = ("NPI published policy recommendations on economic security. " * 200)[:excerpt_chars]
    return "\n".join(
        [
            "Date: 2025-06-30",
            "Sections: Industry and Trade, Policy Proposals",
            "Rules: chips, econsec",
            "Match (PDF https://npi.or.jp/en/research/data/0123456789abcdef.pdf): …the supply of "
            "[semiconductors] to Japan…",
            "",
            excerpt,
            "",
            URL,
        ]
    )


def test_a_message_that_fits_is_left_alone():
    body = alert_body(300)
    assert fit(TITLE, body, DISCORD) == (TITLE, body)


@pytest.mark.parametrize("limits", [DISCORD, TELEGRAM, Limits(body=1000, title=100)])
def test_a_long_alert_keeps_title_header_and_url(limits):
    title, body = fit(TITLE, alert_body(), limits)
    assert fits(title, body, limits)
    assert title == (TITLE if limits.title == 0 or len(TITLE) <= limits.title else title)
    lines = body.split("\n")
    assert lines[0] == "Date: 2025-06-30" and lines[2] == "Rules: chips, econsec"
    assert lines[-1] == URL
    assert "…" in body and len(body) < len(alert_body())


def test_an_sms_keeps_the_title_and_the_url():
    title, body = fit(TITLE, alert_body(), SMS)
    assert fits(title, body, SMS)
    assert title == TITLE and body == URL  # 101 + 2 + 51 units: nothing else fits


def test_a_tiny_limit_still_gets_something_through():
    title, body = fit(TITLE, alert_body(), APRS)
    assert fits(title, body, APRS)
    assert body == URL and title.startswith("[NPI") and title.endswith("…")


def test_a_line_limit_keeps_the_url():
    limits = Limits(body=32768, title=250, lines=2)
    title, body = fit(TITLE, alert_body(300), limits)
    assert fits(title, body, limits) and body.split("\n")[-1] == URL


def test_lengths_are_utf16_units():
    assert measure("半導体") == 3 and measure("🚀") == 2
    assert cut("🚀🚀🚀", 4) == "🚀…"
    assert cut("abc", 3) == "abc" and cut("abcd", 3) == "ab…" and cut("abcd", 0) == ""


url_lines = st.sampled_from([URL, "https://npi.or.jp/research/data/" + "a" * 40 + ".pdf"])
text_lines = st.text(alphabet=st.sampled_from("ab 半導体🚀,."), max_size=300)


@settings(max_examples=300, deadline=None)
@given(
    title=st.text(alphabet=st.sampled_from("ab 🚀半"), max_size=300),
    lines=st.lists(st.one_of(url_lines, text_lines), max_size=12),
    body=st.integers(1, 5000),
    title_max=st.sampled_from([0, 100, 250]),
    shared=st.booleans(),
    max_lines=st.sampled_from([0, 0, 2, 10]),
)
def test_fit_always_fits_and_keeps_the_last_url_when_there_is_room(
    title, lines, body, title_max, shared, max_lines
):
    limits = Limits(body=body, title=title_max, shared=shared, lines=max_lines)
    text = "\n".join(lines)
    new_title, new_body = fit(title, text, limits)
    assert fits(new_title, new_body, limits)
    urls = [line for line in lines if line.startswith("https://")]
    if urls and measure(urls[-1]) + 2 + 60 <= body and max_lines != 1:
        assert urls[-1] in new_body.split("\n")


def test_a_digest_list_keeps_whole_items_and_says_how_many_more():
    items = [
        f"[NPI policy/en] Report number {i} on the economic security of Japan\n{URL}?n={i}" for i in range(25)
    ]
    title, body, shown = fit_list(
        "[NPI] 25 new items",
        "Since the last run:",
        items,
        lambda n: f"… and {n} more (npi-crawler status)",
        DISCORD,
    )
    assert fits(title, body, DISCORD)
    assert 0 < shown < 25
    assert body.endswith(f"… and {25 - shown} more (npi-crawler status)")
    assert all(item in body for item in items[:shown]) and items[shown] not in body
    assert fit_list("t", "", items[:2], lambda n: "more", DISCORD) == ("t", "\n\n".join(items[:2]), 2)


def test_pack_splits_a_digest_into_messages_that_each_fit():
    items = [
        f"[NPI policy/en] Report number {i} on the economic security of Japan\n{URL}?n={i}" for i in range(25)
    ]
    groups = pack(items, DISCORD, lambda n: f"[NPI] {n} new items")
    assert [i for g in groups for i in g] == list(range(25))
    assert len(groups) > 1
    for group in groups:
        assert fits(f"[NPI] {len(group)} new items", "\n\n".join(items[i] for i in group), DISCORD)
    assert pack(["x" * 3000, "y"], DISCORD, lambda n: "t") == [[0], [1]]  # too long alone: its own


def plugin(url: str):
    """The Apprise plugin instance behind a channel URL (as ``watch`` loads it)."""
    (channel,) = load_channels([url])
    return channel.server


def test_limits_are_read_from_apprise_plugins():
    def limits(url: str) -> Limits:
        return Limits.of(plugin(url))

    assert limits("discord://1234567890/abcdefghijklmnopqrstuvwxyz") == Limits(2000, 250, True, 0)
    assert limits("tgram://123456789:abcdefg_hijklmnop/12345") == Limits(4096, 0, False, 0)
    assert limits("clicksend://user:pass@15551234567") == Limits(160, 0, False, 0)
    assert limits("json://127.0.0.1/hook") == Limits(32768, 250, False, 0)
    assert chosen_overflow(plugin("json://127.0.0.1/hook")) is None
    assert chosen_overflow(plugin("json://127.0.0.1/hook?overflow=split")) == "split"


# -- real Apprise to a local endpoint with a limit --------------------------------------------------

N = 600


def limited_channel(sink: JsonSink, query: str = "") -> object:
    """A json:// channel to ``sink`` that declares the endpoint's limit the way Discord's plugin
    declares Discord's: title and body share N characters."""
    server = plugin(sink.url() + query)
    server.body_maxlen = N
    server.overflow_amalgamate_title = True
    return server


def test_a_long_alert_is_refused_as_it_is_and_gets_through_fitted():
    with JsonSink() as sink:
        sink.max_chars = N
        server = limited_channel(sink)
        body = alert_body()
        assert server.notify(title=TITLE, body=body) is False  # Apprise's default: upstream
        assert sink.refused == 1 and sink.posts == []
        title, fitted = fit(TITLE, body, Limits.of(server))
        assert server.notify(title=title, body=fitted) is True
        (post,) = sink.posts
        assert post["title"] == TITLE
        assert post["message"].endswith(URL) and post["message"].startswith("Date: 2025-06-30")
        assert len(post["title"]) + len(post["message"]) <= N


def test_apprise_own_overflow_loses_the_url_or_sends_several_messages():
    """Why npi-crawler fits messages itself: overflow=truncate drops the URL at the end, and
    overflow=split turns one alert into several posts (a retry after a partial failure repeats)."""
    with JsonSink() as sink:
        sink.max_chars = N
        assert limited_channel(sink, "?overflow=truncate").notify(title=TITLE, body=alert_body()) is True
        (post,) = sink.posts
        assert URL not in post["message"]
        sink.posts.clear()
        assert limited_channel(sink, "?overflow=split").notify(title=TITLE, body=alert_body()) is True
        assert len(sink.posts) > 1
