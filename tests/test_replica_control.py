"""The replica changes while it is served (tests/site/control.py): what `make try-watch`, the
latency benchmark and a person trying the watcher offline rely on."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from tests.conftest import ROOT
from tests.endpoints import JsonSink
from tests.site import ReplicaServer, generate_site
from tests.site.control import ControlError, send
from tests.site.render import list_page_url


def _get(url: str, headers: dict | None = None) -> tuple[int, bytes, dict]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, answer.read(), dict(answer.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


@pytest.fixture
def served():
    with ReplicaServer(generate_site(seed=1, n_articles=60, per_page=2)) as replica:
        yield replica


def test_publish_puts_the_article_first_on_its_list(served):
    article = send(served.url, "publish", {"lang": "en", "sections": ["policy"], "title": "Fresh proposal", "pdfs": 2})
    status, page, _ = _get(served.url.rstrip("/") + list_page_url("en", "policy", 1))
    assert status == 200
    path = article["url"].removeprefix(served.url.rstrip("/"))
    entries = page.decode().split('class="entry_list_area"', 1)[1]
    others = [a.path for a in served.site.list_pages("en", "policy")[0][1:]]
    assert others and all(entries.index(path) < entries.index(other) for other in others)
    status, body, _ = _get(article["url"])
    assert status == 200 and b"Fresh proposal" in body and body.count(b'class="btn_pdf"') == 2


def test_a_back_dated_article_is_filed_on_a_deeper_page(served):
    article = send(served.url, "publish", {"section": "policy", "date": "2016-01-02"})
    path = article["url"].removeprefix(served.url.rstrip("/"))
    pages = served.site.list_pages("ja", "policy")
    assert len(pages) > 1 and path not in [a.path for a in pages[0]]
    assert path in [a.path for page in pages[1:] for a in page]


def test_edit_changes_the_validators_and_remove_answers_404(served):
    article = send(served.url, "publish", {"section": "policy"})
    _, _, before = _get(article["url"])
    edited = send(served.url, "edit", {"url": article["url"], "append": "An added paragraph."})
    assert edited["version"] == 2
    status, body, after = _get(article["url"], {"If-None-Match": before["ETag"]})
    assert status == 200 and b"An added paragraph." in body and after["ETag"] != before["ETag"]
    send(served.url, "remove", {"url": article["url"]})
    assert _get(article["url"])[0] == 404


@pytest.mark.parametrize(
    "operation, fields, reason",
    [
        ("publish", {"lang": "fr"}, "lang"),
        ("publish", {"section": "sports"}, "sections"),
        ("publish", {"date": "2021-13-01"}, "YYYY-MM-DD"),
        ("edit", {"url": "/research/1999/01/01000000.html", "append": "x"}, "no live article"),
        ("edit", {"url": "/research/1999/01/01000000.html"}, "no live article"),
        ("explode", {}, "unknown operation"),
    ],
)
def test_a_bad_control_request_is_refused_with_its_reason(served, operation, fields, reason):
    with pytest.raises(ControlError, match=reason):
        send(served.url, operation, fields)
    assert served.paths("POST") == []  # control requests are not in the crawl's request log


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_make_try_watch_delivers_one_alert_for_the_published_proposal(tmp_path):
    """What the README promises a newcomer: a baseline, then the new proposal on the channel."""
    with JsonSink() as sink:
        env = {
            **os.environ,
            "BIN": os.path.dirname(sys.executable),
            "PORT": str(_free_port()),
            "NOTIFY": sink.url("alerts"),
            "DB": str(tmp_path / "try.db"),
        }
        proc = subprocess.run([str(ROOT / "scripts" / "try-watch")], env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "baseline: " in proc.stdout
        assert [p["title"] for p in sink.posts] == ["[NPI policy/ja] 「経済安全保障と半導体」に関する政策提言"]


@pytest.mark.slow
def test_make_try_watch_without_a_channel_prints_the_alert(tmp_path):
    env = {
        **os.environ,
        "BIN": os.path.dirname(sys.executable),
        "PORT": str(_free_port()),
        "SINK_PORT": str(_free_port()),
        "DB": str(tmp_path / "try.db"),
    }
    proc = subprocess.run([str(ROOT / "scripts" / "try-watch")], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    received = proc.stdout.split("--- alert received ---")
    assert len(received) == 2 and "「経済安全保障と半導体」に関する政策提言" in received[1]
