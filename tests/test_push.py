"""Web Push through the real server to a stand-in push service on 127.0.0.1: the message is
encrypted for the browser's keys and signed with the server's VAPID key; categories, the
page in the foreground and a forgotten subscription are honoured; bad subscriptions are
refused with 400, and nothing is served without the token."""

from __future__ import annotations

import json
import os
import stat
import time
import uuid
from types import SimpleNamespace

import pytest
import requests

from tests.conftest import wait_for
from tests.push_service import Browser, PushService, vapid_claims
from tests.test_agents import agent_env, prompt
from tests.test_approvals import approval_of
from tests.test_sessions_api import assert_error, create
from tests.test_terminal_sessions import history, ready_session, send
from tests.test_tls import _start_error
from tests.wsclient import LiveClient

ALL = ["needs_input", "finished", "failed"]


@pytest.fixture
def pushing(make_server):
    """A server that may post to a loopback http push service, with a view-only token."""
    viewer = str(uuid.uuid4())
    server = make_server("--token", str(uuid.uuid4()), "--no-rate-limit",
                         "--interrupt-grace-s", "1", "--push-allow-loopback-http",
                         env={**agent_env(), "MAESTRO_VIEWER_TOKEN": viewer})
    server.viewer = viewer
    return server


def subscribe(server, browser: Browser, categories: list[str] | None = None,
              status: int = 201) -> dict:
    body = {"subscription": browser.subscription()}
    if categories is not None:
        body["categories"] = categories
    response = server.api("POST", "push/subscriptions", json=body)
    assert response.status_code == status, response.text
    return response.json()["subscription"]


def run(server, sid: str, command: str) -> None:
    """Run a command in the session's shell and wait until it has finished (one command at
    a time: a second one sent while the first runs would be typed into it)."""
    before = len(history(server, sid))
    send(server, sid, command)
    wait_for(lambda: len(history(server, sid)) > before)


def kept(server) -> list[dict]:
    response = server.api("GET", "push/subscriptions")
    assert response.status_code == 200, response.text
    return response.json()["subscriptions"]


def test_a_failed_command_reaches_the_phone_encrypted_and_signed_by_the_server(
        pushing, push_service, project):
    key = pushing.api("GET", "push/key").json()["publicKey"]
    browser = Browser(push_service)
    subscription = subscribe(pushing, browser)
    assert subscription["categories"] == ALL
    assert subscription["pushService"] == push_service.origin
    assert "keys" not in subscription and "endpoint" not in subscription
    sid = ready_session(pushing, project, name="nightly build")
    send(pushing, sid, "sh -c 'exit 3'")
    received = push_service.next()
    assert received.path == browser.endpoint.removeprefix(push_service.origin)
    assert browser.decrypt(received) == {
        "title": "nightly build", "body": "Failed (exit 3): sh -c 'exit 3'",
        "category": "failed", "sessionId": sid, "url": f"session/{sid}"}
    claims = vapid_claims(received.headers["authorization"], key)
    assert claims["aud"] == push_service.origin
    assert claims["sub"] == "https://runmaestro.ai"
    assert time.time() < claims["exp"] <= time.time() + 24 * 3600
    assert int(received.headers["ttl"]) > 0
    # The key is made once, kept private, and survives a restart (phones stay subscribed).
    path = pushing.data_dir / "vapid.pem"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    pushing.stop()
    pushing.start()
    assert pushing.api("GET", "push/key").json()["publicKey"] == key
    assert [item["id"] for item in kept(pushing)] == [subscription["id"]]


def test_a_category_that_is_off_is_not_pushed(pushing, push_service, project):
    browser = Browser(push_service)
    subscribe(pushing, browser, ["failed"])
    sid = ready_session(pushing, project)
    run(pushing, sid, "true")  # finished: not wanted
    run(pushing, sid, "false")
    assert browser.decrypt(push_service.next())["category"] == "failed"  # the first one


def test_no_push_about_a_session_a_page_shows_in_the_foreground(pushing, push_service, project):
    browser = Browser(push_service)
    subscribe(pushing, browser)
    sid = ready_session(pushing, project)
    page = LiveClient(pushing, session_id=sid)
    viewer = LiveClient(SimpleNamespace(port=pushing.port, token=pushing.viewer), session_id=sid)
    try:
        shown = page.request({"type": "presence", "sessionId": sid, "visible": True},
                             "presence_result")
        assert shown["success"] is True
        viewer.request({"type": "presence", "sessionId": sid, "visible": True},
                       "presence_result")
        run(pushing, sid, "false")  # the user is looking: no push
        page.request({"type": "presence", "sessionId": sid, "visible": False},
                     "presence_result")
        send(pushing, sid, "true")  # the phone is locked now (a viewer's page holds nothing)
        assert browser.decrypt(push_service.next())["category"] == "finished"
        bad = page.request({"type": "presence", "sessionId": sid}, "presence_result")
        assert bad["success"] is False and bad["statusCode"] == 400
    finally:
        page.close()
        viewer.close()


def test_a_shell_waiting_for_input_and_an_agent_asking_both_need_the_user(
        pushing, push_service, project):
    browser = Browser(push_service)
    subscribe(pushing, browser, ["needs_input"])
    sid = ready_session(pushing, project, name="deploy")
    send(pushing, sid, "read answer")
    notice = browser.decrypt(push_service.next())
    assert notice["category"] == "needs_input" and notice["title"] == "deploy"
    assert notice["body"] == "Waiting for your input"
    agent = create(pushing, project, name="agent", toolType="claude-code")["id"]
    prompt(pushing, agent, "ask to touch")
    approval = approval_of(pushing, agent)
    notice = browser.decrypt(push_service.next())
    assert notice == {**notice, "sessionId": agent, "title": "agent",
                      "body": approval["title"]}


def test_a_subscription_the_push_service_forgot_is_removed(pushing, push_service, project):
    subscribe(pushing, Browser(push_service))
    push_service.status = 410
    sid = ready_session(pushing, project)
    send(pushing, sid, "true")
    push_service.next()
    wait_for(lambda: kept(pushing) == [])


def _stalled(make_server, push_service, project, *flags: str) -> tuple:
    """A server (with `flags`) subscribed to the push service, which has stopped answering;
    its session ran `false`, whose push the service holds."""
    server = make_server("--token", str(uuid.uuid4()), "--no-rate-limit",
                         "--push-allow-loopback-http", *flags)
    browser = Browser(push_service)
    subscribe(server, browser)
    sid = ready_session(server, project)
    push_service.answering.clear()  # it takes requests and does not answer
    run(server, sid, "false")
    return server, browser, sid


def test_a_hanging_push_service_costs_one_timeout_and_never_holds_up_the_server(
        make_server, push_service, project):
    server, browser, sid = _stalled(make_server, push_service, project,
                                    "--push-timeout-s", "1")
    assert browser.decrypt(push_service.next())["category"] == "failed"
    run(server, sid, "true")  # the server still works, and gave up on the first push:
    assert browser.decrypt(push_service.next())["category"] == "finished"


def test_notices_beyond_the_queue_are_dropped_while_the_push_service_is_slow(
        make_server, push_service, project):
    server, browser, sid = _stalled(make_server, push_service, project,
                                    "--push-queue-size", "1")
    push_service.next()  # the worker waits on this one
    run(server, sid, "echo queued")  # waits in the queue
    run(server, sid, "echo dropped")  # the queue is full: dropped
    push_service.answering.set()
    # The queued notice goes out once the held one is answered; only then is there room.
    assert browser.decrypt(push_service.next())["body"] == "Finished: echo queued"
    run(server, sid, "echo after")
    assert browser.decrypt(push_service.next())["body"] == "Finished: echo after"
    assert "1 notification(s) dropped" in server.log_text


def test_one_browser_subscribes_once_and_can_unsubscribe(pushing, push_service):
    browser = Browser(push_service)
    first = subscribe(pushing, browser, ["finished"])
    again = subscribe(pushing, browser, ["failed", "needs_input"], status=200)
    assert again["id"] == first["id"] and again["categories"] == ["needs_input", "failed"]
    assert len(kept(pushing)) == 1
    response = pushing.api("DELETE", f"push/subscriptions/{first['id']}")
    assert response.status_code == 200 and response.json()["success"] is True
    assert kept(pushing) == []
    assert_error(pushing.api("DELETE", f"push/subscriptions/{first['id']}"), 404, "not found")
    audit = (pushing.data_dir / "audit.log").read_text()
    actions = [json.loads(line)["action"] for line in audit.splitlines()]
    assert actions == ["push_subscribe", "push_subscribe", "push_unsubscribe", "push_unsubscribe"]
    assert browser.endpoint not in audit and browser.subscription()["keys"]["auth"] not in audit


def _with(subscription: dict, **changes) -> dict:
    keys = {**subscription["keys"], **changes.pop("keys", {})}
    return {**subscription, **changes, "keys": keys}


def test_bad_subscriptions_are_refused_with_a_clear_400(pushing, push_service):
    good = Browser(push_service).subscription()
    off_curve = "BA" + "A" * 85  # 65 bytes, 0x04 then zeros: not a point on P-256
    cases = [
        ({}, "'subscription' is required"),
        ({"subscription": "x"}, "'subscription' is required"),
        ({"subscription": _with(good, endpoint="http://push.example.com/x")}, "https URL"),
        ({"subscription": _with(good, endpoint="ftp://127.0.0.1/x")}, "https URL"),
        ({"subscription": _with(good, endpoint="https://u:p@push.example.com/x")},
         "no user name"),
        ({"subscription": _with(good, endpoint="https://push.example.com/" + "a" * 2100)},
         "longer than 2048"),
        ({"subscription": _with(good, endpoint="https://push.example.com:x/")}, "valid URL"),
        ({"subscription": _with(good, endpoint=5)}, "push service's URL"),
        ({"subscription": {**good, "keys": None}}, "'subscription.keys' must be an object"),
        ({"subscription": _with(good, keys={"p256dh": "not base64!"})}, "base64url"),
        ({"subscription": _with(good, keys={"p256dh": "AAAA"})}, "65 bytes, not 3"),
        ({"subscription": _with(good, keys={"p256dh": off_curve})}, "not a P-256 public key"),
        ({"subscription": _with(good, keys={"auth": "A" * 300})}, "base64url"),
        ({"subscription": _with(good, keys={"auth": "AAAA"})}, "16 bytes, not 3"),
        ({"subscription": good, "categories": []}, "non-empty list"),
        ({"subscription": good, "categories": "failed"}, "non-empty list"),
        ({"subscription": good, "categories": ["failed", "lunch"]}, "Unknown category 'lunch'"),
    ]
    for body, fragment in cases:
        assert_error(pushing.api("POST", "push/subscriptions", json=body), 400, fragment)
    not_json = pushing.api("POST", "push/subscriptions", data="{",
                           headers={"Content-Type": "application/json"})
    assert_error(not_json, 400, "not valid JSON")
    assert kept(pushing) == []


def test_loopback_http_needs_the_setting_and_the_count_is_capped(make_server, push_service):
    server = make_server("--token", str(uuid.uuid4()), "--no-rate-limit",
                         "--push-max-subscriptions", "2")
    local = Browser(push_service).subscription()
    assert_error(server.api("POST", "push/subscriptions", json={"subscription": local}), 400,
                 "--push-allow-loopback-http")
    for n in range(2):
        sub = {**local, "endpoint": f"https://push.example.com/{n}"}
        response = server.api("POST", "push/subscriptions", json={"subscription": sub})
        assert response.status_code == 201, response.text
    third = {**local, "endpoint": "https://push.example.com/3"}
    assert_error(server.api("POST", "push/subscriptions", json={"subscription": third}), 409,
                 "limit 2")


LOOPBACK_ENDPOINTS = [
    "https://127.0.0.1/push/x", "https://localhost/push/x", "https://[::1]/push/x",
    "https://[::ffff:127.0.0.1]/push/x", "https://2130706433/push/x",
    "https://0x7f000001/push/x", "https://127.1/push/x",
]
NETWORK_ENDPOINTS = [
    "https://169.254.169.254/latest/meta-data/", "https://10.0.0.5/push/x",
    "https://192.168.1.1/push/x", "https://172.16.0.1/push/x", "https://100.64.0.1/push/x",
    "https://0.0.0.0/push/x", "https://[fd00::1]/push/x", "https://[fe80::1]/push/x",
    "https://224.0.0.1/push/x", "https://[::ffff:10.0.0.5]/push/x",
]


def test_endpoints_on_this_machine_the_lan_or_a_metadata_address_are_refused(
        make_server, pushing, push_service, tmp_path):
    """A subscription is a URL the server will POST to: an outsider with the token must not
    aim it at this machine or its network. The loopback setting opens loopback only."""
    strict = make_server("--token", str(uuid.uuid4()), "--no-rate-limit",
                         data_dir=tmp_path / "strict")
    good = Browser(push_service).subscription()
    for endpoint in LOOPBACK_ENDPOINTS + NETWORK_ENDPOINTS:
        body = {"subscription": {**good, "endpoint": endpoint}}
        assert_error(strict.api("POST", "push/subscriptions", json=body), 400,
                     "not a public address")
    for endpoint in NETWORK_ENDPOINTS:
        body = {"subscription": {**good, "endpoint": endpoint}}
        assert_error(pushing.api("POST", "push/subscriptions", json=body), 400,
                     "not a public address")
    assert kept(strict) == [] and kept(pushing) == []


def test_a_kept_loopback_subscription_is_not_posted_to_once_the_setting_is_off(
        make_server, push_service, project):
    """The address is checked again before each post: a subscription kept while loopback
    was allowed reaches nothing after a restart without --push-allow-loopback-http."""
    token = str(uuid.uuid4())
    first = make_server("--token", token, "--no-rate-limit", "--push-allow-loopback-http")
    subscribe(first, Browser(push_service))
    first.stop()
    server = make_server("--token", token, "--no-rate-limit")
    sid = ready_session(server, project, name="build")
    run(server, sid, "sh -c 'exit 3'")
    wait_for(lambda: "not a public address; not sent" in "".join(server.errors))
    assert push_service.received.empty()


@pytest.mark.parametrize("answer", ["flood", "drip"])
def test_a_push_service_answering_without_end_does_not_stop_the_others(
        make_server, push_service, project, answer):
    """A push service that answers with gigabytes, or a byte a second, costs one bounded
    post: the next subscription and the next notification still go out."""
    server = make_server("--token", str(uuid.uuid4()), "--no-rate-limit",
                         "--push-allow-loopback-http", "--push-timeout-s", "2")
    hostile = PushService()
    try:
        hostile.body = answer
        subscribe(server, Browser(hostile))
        browser = Browser(push_service)
        subscribe(server, browser)
        sid = ready_session(server, project, name="build")
        run(server, sid, "sh -c 'exit 3'")
        assert browser.decrypt(push_service.next())["body"] == "Failed (exit 3): sh -c 'exit 3'"
        run(server, sid, "sh -c 'exit 4'")
        assert browser.decrypt(push_service.next())["body"] == "Failed (exit 4): sh -c 'exit 4'"
    finally:
        hostile.close()


def test_push_routes_need_the_token_refuse_a_viewer_and_are_rate_limited(
        pushing, push_service, make_server, tmp_path):
    body = {"subscription": Browser(push_service).subscription()}
    for method, path in (("GET", "push/key"), ("GET", "push/subscriptions"),
                         ("POST", "push/subscriptions"), ("DELETE", "push/subscriptions/x")):
        response = requests.request(method, f"{pushing.base}/api/{path}", json=body,
                                    allow_redirects=False, timeout=10)
        assert response.status_code == 302, (method, path)
        wrong = requests.request(method, f"{pushing.base}/{uuid.uuid4()}/api/{path}",
                                 json=body, allow_redirects=False, timeout=10)
        assert wrong.status_code == 302, (method, path)
    as_viewer = requests.post(f"{pushing.base}/{pushing.viewer}/api/push/subscriptions",
                              json=body, timeout=10)
    assert as_viewer.status_code == 403
    assert kept(pushing) == []
    limited = make_server("--token", str(uuid.uuid4()), "--rate-limit-post", "2",
                          "--push-allow-loopback-http", data_dir=tmp_path / "limited")
    statuses = [limited.api("POST", "push/subscriptions", json=body).status_code
                for _ in range(3)]
    assert statuses == [201, 200, 429]


def test_an_unreadable_push_key_stops_start_up_and_is_never_replaced(tmp_path):
    data = tmp_path / "d"
    data.mkdir(mode=0o700)
    (data / "vapid.pem").write_text("not a key\n")
    lines = _start_error(tmp_path)
    assert lines[-1].startswith(f"maestro-web: error: the Web Push key {data / 'vapid.pem'} "
                                "cannot be read")
    assert "move it away to make a new one" in lines[-1]
    assert (data / "vapid.pem").read_text() == "not a key\n"
