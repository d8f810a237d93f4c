"""Pooled GET and POST quotas per client IP, with the contract's 429."""

from __future__ import annotations

import time

import requests

from tests.test_sessions_api import create


def test_get_quota_is_pooled_across_endpoints_and_answers_429(make_server):
    server = make_server("--rate-limit-get", "5", "--rate-limit-post", "3")
    paths = ["sessions", "theme", "themes", "commands", "history"]
    responses = [server.api("GET", path) for path in paths]
    assert [response.status_code for response in responses] == [200] * 5
    assert [r.headers["X-RateLimit-Remaining"] for r in responses] == ["4", "3", "2", "1", "0"]
    assert "Retry-After" not in responses[0].headers
    response = server.api("GET", "sessions")
    assert response.status_code == 429
    body = response.json()
    assert body["statusCode"] == 429 and body["error"] == "Too Many Requests"
    assert body["message"] == "Rate limit exceeded. Try again later."
    assert 1 <= body["retryAfter"] <= 60 and isinstance(body["timestamp"], int)
    assert int(response.headers["Retry-After"]) == body["retryAfter"]
    assert response.headers["X-RateLimit-Limit"] == "5"
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert int(response.headers["X-RateLimit-Reset"]) >= int(time.time())


def test_post_quota_is_separate_and_covers_every_changing_method(make_server, project):
    server = make_server("--rate-limit-get", "50", "--rate-limit-post", "3")
    sid = create(server, project)["id"]                               # POST 1
    server.api("PATCH", f"session/{sid}", json={"name": "x"})        # PATCH 2
    server.api("PUT", "theme", json={"id": "nord"})                  # PUT 3
    refused = server.api("DELETE", f"session/{sid}")
    assert refused.status_code == 429
    assert refused.json()["retryAfter"] >= 1
    assert server.api("GET", f"session/{sid}").status_code == 200    # GETs still allowed
    ok = server.api("GET", "sessions")
    assert ok.headers["X-RateLimit-Limit"] == "50"


def test_health_and_preflights_are_never_counted(make_server):
    server = make_server("--rate-limit-get", "2", "--rate-limit-post", "2")
    for _ in range(10):
        assert requests.get(server.base + "/health", timeout=10).status_code == 200
        preflight = requests.options(server.url("api/session/x/send"), timeout=10, headers={
            "Origin": "http://phone.example", "Access-Control-Request-Method": "POST"})
        assert preflight.status_code == 200
        assert preflight.headers["Access-Control-Allow-Origin"] in ("*", "http://phone.example")
    assert server.api("GET", "sessions").status_code == 200
    assert server.api("GET", "sessions").status_code == 200
    assert server.api("GET", "sessions").status_code == 429


def test_window_resets_the_quota(make_server):
    server = make_server("--rate-limit-get", "1", "--rate-limit-window-ms", "1000")
    assert server.api("GET", "sessions").status_code == 200
    assert server.api("GET", "sessions").status_code == 429
    time.sleep(2.1)
    assert server.api("GET", "sessions").status_code == 200


def test_no_rate_limit_flag_disables_quotas(make_server):
    server = make_server("--rate-limit-get", "1", "--no-rate-limit")
    assert all(server.api("GET", "theme").status_code == 200 for _ in range(5))


def test_cors_allows_configured_origins_without_credentials(make_server):
    server = make_server("--cors-origins", "http://allowed.example", "--no-rate-limit")
    allowed = server.api("GET", "theme", headers={"Origin": "http://allowed.example"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "http://allowed.example"
    assert "Access-Control-Allow-Credentials" not in allowed.headers
    other = server.api("GET", "theme", headers={"Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_cors_headers_go_to_browsers_only_and_cover_errors(make_server):
    server = make_server("--cors-origins", "http://allowed.example", "--no-rate-limit")
    origin = {"Origin": "http://allowed.example"}
    missing = server.api("GET", "session/no-such-session", headers=origin)
    assert missing.status_code == 404  # a page can read why its request failed
    assert missing.headers["Access-Control-Allow-Origin"] == "http://allowed.example"
    no_origin = server.api("GET", "theme")  # curl, a script: no CORS work, no CORS headers
    assert no_origin.status_code == 200
    assert not [name for name in no_origin.headers if name.startswith("Access-Control-")]


def test_websocket_reads_draw_on_the_get_quota(make_server):
    from tests.wsclient import LiveClient

    server = make_server("--rate-limit-get", "4", "--rate-limit-post", "100")
    client = LiveClient(server)  # the handshake: GET 1
    assert client.request({"type": "get_sessions"}, "sessions_list")  # GET 2
    assert client.request({"type": "subscribe", "sessionId": None}, "subscribed")  # GET 3
    assert server.api("GET", "sessions").status_code == 200  # GET 4: the quota is pooled
    for kind in ("get_sessions", "subscribe"):
        limited = client.request({"type": kind}, "error")
        assert limited["code"] == "rate_limited" and limited["retryAfter"] >= 1
    assert client.request({"type": "ping"}, "pong")  # the heartbeat is never counted
    assert server.api("GET", "sessions").status_code == 429
    client.close()
