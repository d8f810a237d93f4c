"""Pairing that lasts: a browser's first page load with the token trades it for a cookie and
a 303 to the same page without it; the cookie alone then opens the UI, the API and the socket;
a wrong cookie is refused like a wrong token; --persistent-token keeps the pairing and the port
across restarts."""

from __future__ import annotations

import json
import uuid

import pytest
import requests
import websocket

from app.pairing import cookie_value
from tests.test_tunnels import CLOUDFLARE_HOST, _stand_in_env

SCRIPTS = ["run.py", "wsgi.py"]
# What a browser sends when the user opens a URL (typed, bookmarked, scanned, home screen).
NAVIGATION = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "none", "Sec-Fetch-Dest": "document"}


def _get(server, path: str, cookie: str | None = None, **headers: str) -> requests.Response:
    if cookie is not None:
        headers["Cookie"] = f"maestro-{server.port}={cookie}"
    return requests.get(server.base + path, headers=headers, allow_redirects=False,
                        timeout=10, verify=server.verify)


def _pair(server, path: str = "/") -> tuple[requests.Response, str]:
    response = _get(server, f"/{server.token}{path}", **NAVIGATION)
    assert response.status_code == 303, response.text
    return response, response.cookies[f"maestro-{server.port}"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_page_load_trades_the_token_for_a_cookie_that_opens_everything(make_server, script):
    server = make_server("--token", str(uuid.uuid4()), "--no-rate-limit", script=script)
    response, cookie = _pair(server)
    assert response.headers["Location"] == "/"
    set_cookie = response.headers["Set-Cookie"]
    for attribute in ("HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="):
        assert attribute in set_cookie
    assert "Secure" not in set_cookie  # plain http: a Secure cookie would never come back
    assert server.token not in set_cookie and cookie == cookie_value(server.token)
    page = _get(server, "/", cookie)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    assert _get(server, "/static/js/app.js", cookie).status_code == 200
    assert _get(server, "/sw.js", cookie).status_code == 200
    assert _get(server, "/session/abc", cookie).status_code == 200
    assert _get(server, "/api/whoami", cookie).json()["role"] == "owner"
    created = requests.post(f"{server.base}/api/sessions", timeout=10,
                            headers={"Cookie": f"maestro-{server.port}={cookie}",
                                     "Origin": server.base},  # as the UI's fetch sends it
                            json={"name": "paired", "cwd": "/tmp", "toolType": "terminal"})
    assert created.status_code in (200, 201), created.text
    ws = websocket.create_connection(f"ws://127.0.0.1:{server.port}/ws", timeout=10,
                                     cookie=f"maestro-{server.port}={cookie}")
    assert json.loads(ws.recv())["type"] == "init"
    ws.close()
    server.stop()
    assert cookie not in server.log_text and server.token not in server.log_text
    assert '"GET /api/whoami" 200' in server.log_text  # cookie paths hold no token


def test_the_session_page_and_query_string_survive_the_exchange(make_server):
    server = make_server()
    response, _ = _pair(server, "/session/abc?tab=2")
    assert response.headers["Location"] == "/session/abc?tab=2"


def test_scripts_and_cross_site_links_keep_the_token_in_the_url(make_server):
    server = make_server()
    assert _get(server, f"/{server.token}/").status_code == 200  # curl, Postman, scripts
    # After a link on another site, a Strict cookie would not come back with the redirect.
    cross = _get(server, f"/{server.token}/", **{**NAVIGATION, "Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 200 and "Set-Cookie" not in cross.headers
    api = _get(server, f"/{server.token}/api/whoami", **NAVIGATION)  # only pages are traded
    assert api.status_code == 200


def test_a_wrong_cookie_is_refused_like_a_wrong_token(make_server):
    server = make_server("--auth-fail-limit", "3", "--no-rate-limit")
    assert _get(server, "/").status_code == 302  # neither cookie nor token
    wrong = cookie_value(str(uuid.uuid4()))
    for path in ("/api/whoami", "/"):
        response = _get(server, path, wrong)
        assert response.status_code == 302
        assert response.headers["Location"] == "https://runmaestro.ai"
    assert _get(server, "/api/whoami", server.token).status_code == 429  # the raw token: no
    assert _get(server, f"/{server.token}/api/whoami", wrong).status_code == 200


def test_a_viewer_link_pairs_a_viewer(make_server):
    viewer = str(uuid.uuid4())
    server = make_server("--no-rate-limit", env={"MAESTRO_VIEWER_TOKEN": viewer})
    response = _get(server, f"/{viewer}/", **NAVIGATION)
    cookie = response.cookies[f"maestro-{server.port}"]
    assert _get(server, "/api/whoami", cookie).json()["role"] == "viewer"
    refused = requests.post(f"{server.base}/api/sessions", timeout=10, json={},
                            headers={"Cookie": f"maestro-{server.port}={cookie}"})
    assert refused.status_code == 403


def test_the_cookie_is_secure_over_https(make_server, tmp_path):
    server = make_server("--tls", "self-signed")
    server.verify = str(tmp_path / "data" / "tls" / "ca.crt")
    response, cookie = _pair(server)
    assert "Secure" in response.headers["Set-Cookie"]
    assert _get(server, "/api/whoami", cookie).status_code == 200


def test_the_cookie_is_secure_through_a_tunnel_that_reaches_us_as_plain_http(make_server,
                                                                             tmp_path):
    """The tunnel's page is https (the browser sent Sec-Fetch-*), though the tunnel talks
    plain http to us: a cookie without Secure would also go out on a typed http:// to the
    tunnel's name, in the clear."""
    server = make_server("--tunnel", "cloudflare", env=_stand_in_env(tmp_path))
    response = requests.get(f"{server.base}/{server.token}/", allow_redirects=False, timeout=10,
                            headers={**NAVIGATION, "Host": CLOUDFLARE_HOST})
    assert response.status_code == 303, response.text
    assert "Secure" in response.headers["Set-Cookie"].split("; ")
    local, _ = _pair(server)
    assert "Secure" not in local.headers["Set-Cookie"]  # http://127.0.0.1 is the machine


def test_a_new_token_unpairs_and_persistent_mode_keeps_pairing_and_port(make_server, tmp_path):
    fresh = make_server(data_dir=tmp_path / "fresh")
    _, cookie = _pair(fresh)
    fresh.stop()
    fresh.start(["--port", str(fresh.port)])  # a fresh token at every start: unpaired
    assert _get(fresh, "/api/whoami", cookie).status_code == 302
    fresh.stop()

    paired = make_server("--persistent-token", data_dir=tmp_path / "paired", port=None)
    _, cookie = _pair(paired)
    first_port = paired.port
    assert (tmp_path / "paired" / "port").read_text().strip() == str(first_port)
    paired.stop()
    paired.start()  # no --port: the remembered one, the same token, still paired
    assert paired.port == first_port
    assert _get(paired, "/api/whoami", cookie).status_code == 200
    paired.stop()
    paired.start(["--port", "0"])  # a port given: used, and not remembered
    assert paired.port != first_port
    assert (tmp_path / "paired" / "port").read_text().strip() == str(first_port)
    paired.stop()
    paired.start(["--rotate-token"])  # a new token: every browser unpaired
    assert _get(paired, "/api/whoami", cookie).status_code == 302


@pytest.mark.parametrize("script", ["run.py", "wsgi.py"])
def test_another_page_of_the_same_site_cannot_act_with_the_cookie(make_server, script):
    """SameSite=Strict still sends the cookie from any port of the same host: a page on
    http://127.0.0.1:<other port> must not open the socket or change anything."""
    server = make_server("--token", str(uuid.uuid4()), "--no-rate-limit", script=script)
    _, cookie = _pair(server)
    jar = f"maestro-{server.port}={cookie}"
    sid = server.api("POST", "sessions", json={
        "name": "target", "cwd": "/tmp", "toolType": "terminal"}).json()["session"]["id"]
    for origin in ("http://127.0.0.1:1", "http://evil.example", None):
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(f"ws://127.0.0.1:{server.port}/ws", timeout=10,
                                        cookie=jar, origin=origin,
                                        suppress_origin=origin is None)
        assert refused.value.status_code == 403
        headers = {"Cookie": jar, **({"Origin": origin} if origin else {})}
        for method, path in (("POST", f"/api/session/{sid}/interrupt"),
                             ("DELETE", f"/api/session/{sid}")):
            response = requests.request(method, server.base + path, headers=headers, timeout=10)
            assert response.status_code == 403, (origin, path, response.text)
    assert _get(server, "/api/sessions", cookie).json()["count"] == 1  # reads still work
    own = websocket.create_connection(f"ws://127.0.0.1:{server.port}/ws", timeout=10,
                                      cookie=jar, origin=server.base)
    assert json.loads(own.recv())["type"] == "init"
    own.close()
    assert requests.post(f"{server.base}/api/session/{sid}/interrupt", timeout=10, headers={
        "Cookie": jar, "Origin": server.base}).status_code == 200
