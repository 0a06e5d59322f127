"""The dashboard over HTTP: content negotiation, content types, the security headers, escaping, static files.

The browser-side behaviour (live updates, the chart) is tested in a real Chromium in
``test_dashboard_browser.py``; this file checks what any client sees on the wire.
"""

from __future__ import annotations

import math

import pytest
from aiohttp import web

from orchestrator.jobs import Snapshot
from orchestrator.status.dashboard import SECURITY_HEADERS, STATIC_FILES, json_text, wants_html
from orchestrator.status.pages import esc, sparkline
from tests.status.test_server import Served, served  # noqa: F401 - the fixture

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


async def fetch(server: Served, path: str, accept: str | None = None) -> tuple[int, dict[str, str], str]:
    headers = {"Accept": accept} if accept is not None else {}
    async with server.session.get(server.url + path, headers=headers) as response:
        return response.status, dict(response.headers), await response.text()


async def test_the_jobs_page_is_html_with_every_job_and_the_security_headers(served: Served) -> None:  # noqa: F811
    status, headers, body = await fetch(served, "/", BROWSER_ACCEPT)

    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    for name, value in SECURITY_HEADERS.items():
        assert headers[name] == value
    assert "script-src 'self'" in headers["Content-Security-Policy"] and "unsafe-inline" not in headers[
        "Content-Security-Policy"]
    for job_id in (served.ids.succeeded, served.ids.running, served.ids.failed, served.ids.queued):
        assert f'data-job="{job_id}"' in body
    assert "<script>" not in body.split("</head>", 1)[1]  # no inline script: only the two files in <head>
    assert " style=" not in body  # no inline style either (the CSP would refuse it)


async def test_filters_by_state_and_label_and_refuses_bad_ones(served: Served) -> None:  # noqa: F811
    _status, _headers, body = await fetch(served, "/?state=failed")
    assert served.ids.failed in body and served.ids.running not in body

    status, _headers, text = await fetch(served, "/dashboard.json?state=nonsense")
    assert status == 400 and "nonsense" in text
    status, _headers, text = await fetch(served, "/?label=team")
    assert status == 400 and "KEY=VALUE" in text


async def test_dashboard_json_has_rows_counts_and_sparkline_losses(served: Served) -> None:  # noqa: F811
    async with served.session.get(served.url + "/dashboard.json") as response:
        assert response.content_type == "application/json"
        data = await response.json()
    rows = {row["id"]: row for row in data["jobs"]}
    assert set(rows) >= {served.ids.succeeded, served.ids.running, served.ids.failed, served.ids.queued}
    assert sum(data["counts"].values()) == len(data["jobs"])
    succeeded = rows[served.ids.succeeded]
    assert succeeded["losses"] and succeeded["losses"][-1] == pytest.approx(succeeded["last_loss"])
    assert rows[served.ids.queued]["losses"] == []


@pytest.mark.parametrize(
    ("accept", "html"),
    [(None, False), ("*/*", False), ("application/json", False), (BROWSER_ACCEPT, True), ("text/html", True),
     ("application/json, text/html;q=0.5", False), ("text/html;q=0.9, application/json;q=0.8", True)],
)
async def test_a_job_is_json_for_scripts_and_a_page_for_browsers(
    served: Served, accept: str | None, html: bool  # noqa: F811
) -> None:
    status, headers, body = await fetch(served, f"/jobs/{served.ids.succeeded}", accept)

    assert status == 200 and headers["Vary"] == "Accept"
    if html:
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        assert 'id="chart"' in body and "Timeline" in body
    else:
        assert headers["Content-Type"].startswith("application/json")
        assert body.startswith("{")


async def test_an_unknown_job_is_404_as_a_page_too(served: Served) -> None:  # noqa: F811
    status, headers, _body = await fetch(served, "/jobs/nope", BROWSER_ACCEPT)
    assert status == 404 and headers["Content-Security-Policy"] == SECURITY_HEADERS["Content-Security-Policy"]


@pytest.mark.parametrize("name", sorted(STATIC_FILES))
async def test_static_files_are_served_with_their_types(served: Served, name: str) -> None:  # noqa: F811
    status, headers, body = await fetch(served, f"/static/{name}")
    assert status == 200 and headers["Content-Type"] == f"{STATIC_FILES[name]}; charset=utf-8"
    assert "Licence" in body and "innerHTML" not in body.replace("Nothing here uses innerHTML", "")


@pytest.mark.parametrize("path", ["/static/../server.py", "/static/%2e%2e%2fserver.py", "/static/x.js"])
async def test_nothing_else_is_served_as_static(served: Served, path: str) -> None:  # noqa: F811
    status, _headers, _body = await fetch(served, path)
    assert status == 404


def test_esc_and_sparkline_make_markup_of_nothing() -> None:
    assert esc('<script>"x"</script>') == "&lt;script&gt;&quot;x&quot;&lt;/script&gt;"
    assert "polyline" in sparkline([3.0, 2.0, math.nan, 1.0]) and "polyline" not in sparkline([1.0])


def test_json_for_pages_has_no_nan() -> None:
    assert json_text({"loss": math.nan, "list": [math.inf, 1.5], "s": Snapshot(1, 0, 1.0).step}) == (
        '{"loss": null, "list": [null, 1.5], "s": 1}'
    )


def test_wants_html_reads_quality_values() -> None:
    def request(accept: str) -> web.Request:
        from aiohttp.test_utils import make_mocked_request

        return make_mocked_request("GET", "/", headers={"Accept": accept})

    assert wants_html(request(BROWSER_ACCEPT))
    assert not wants_html(request("text/html;q=0"))
    assert not wants_html(request("text/html;q=oops"))


