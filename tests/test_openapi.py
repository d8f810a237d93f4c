"""The OpenAPI document against the real server: a valid 3.1 document, exactly the routes the
app serves, request schemas the server holds to, and response schemas its real answers fit."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import uuid
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import validate as validate_openapi

from app.api.openapi import spec_path
from tests.conftest import ROOT
from tests.test_sessions_api import assert_error, create

HTTP_METHODS = ("get", "put", "post", "patch", "delete")


def served_routes() -> set[tuple[str, str]]:
    """(OpenAPI path, method) of every route Flask serves under /api."""
    from app import create_app
    from app.config import Settings

    with tempfile.TemporaryDirectory() as data_dir:
        app = create_app(Settings.defaults(data_dir=data_dir))
        try:
            return {(spec_path(rule.rule), method.lower())
                    for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/")
                    for method in rule.methods - {"HEAD", "OPTIONS"}}
        finally:
            app.extensions["maestro"].shutdown()


def documented_routes(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(path, method) for path, item in document["paths"].items()
            for method in item if method in HTTP_METHODS}


class ResponseChecker:
    """Validates real answers against the document's response schemas (refs resolved in it)."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.checked: set[tuple[str, str, int]] = set()

    def __call__(self, response, path: str, method: str) -> dict[str, Any]:
        """The response's body, after checking it fits what `path`/`method` documents for
        its status (an undocumented status fails)."""
        responses = self.document["paths"][path][method]["responses"]
        status = str(response.status_code)
        assert status in responses, (
            f"{method.upper()} {path} answered {status}, which the document does not list "
            f"({', '.join(responses)}): {response.text[:300]}")
        answer = responses[status]
        if "$ref" in answer:
            pointer = answer["$ref"]
        else:
            pointer = "#/paths/" + _escape(path) + f"/{method}/responses/{status}"
        schema = {**self.document, "$ref": pointer + "/content/application~1json/schema"}
        body = response.json()
        jsonschema.Draft202012Validator(schema).validate(body)
        self.checked.add((path, method, response.status_code))
        return body


def _escape(path: str) -> str:
    return path.replace("~", "~0").replace("/", "~1")


@pytest.fixture
def document(server) -> dict[str, Any]:
    response = server.api("GET", "openapi.json")
    assert response.status_code == 200
    return response.json()


def test_the_document_is_valid_openapi_3_1(document):
    assert document["openapi"] == "3.1.0"
    validate_openapi(document)  # raises with the offending place when it is not
    assert document["servers"][0]["url"].endswith("/api")


def test_every_served_route_is_documented_and_every_documented_route_is_served(document):
    served, documented = served_routes(), documented_routes(document)
    missing = sorted(f"{method.upper()} {path}" for path, method in served - documented)
    stale = sorted(f"{method.upper()} {path}" for path, method in documented - served)
    assert not missing, ("served but not in app/api/openapi.py paths() (add one _route entry "
                         "each): " + "; ".join(missing))
    assert not stale, "in app/api/openapi.py but not served: " + "; ".join(stale)


def test_the_tool_type_enum_lists_the_configured_agents(document):
    body = document["paths"]["/sessions"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]
    assert {"terminal", "claude-code", "codex"} <= set(body["properties"]["toolType"]["enum"])
    assert body["additionalProperties"] is False


@pytest.mark.parametrize(("method", "path", "body", "unknown"), [
    ("POST", "sessions", {"name": "n", "cwd": "{project}", "toolType": "terminal",
                          "colour": "red"}, "colour"),
    ("POST", "session/{sid}/send", {"command": "true", "comand": "false"}, "comand"),
    ("POST", "session/{sid}/interrupt", {"tab": "x"}, "tab"),
    ("POST", "session/{sid}/keys", {"keys": ["Enter"], "repeat": 3}, "repeat"),
    ("POST", "session/{sid}/resize", {"cols": 80, "rows": 24, "zoom": 2}, "zoom"),
    ("POST", "session/{sid}/input", {"data": "x", "raw": True}, "raw"),
    ("POST", "session/{sid}/tabs", {"title": "x"}, "title"),
    ("PUT", "theme", {"id": "nord", "mode": "dark"}, "mode"),
    ("POST", "session/{sid}/approvals/a1", {"decision": "deny", "reason": "no"}, "reason"),
])
def test_a_body_field_the_endpoint_does_not_take_is_a_400_naming_it(
        server, project, method, path, body, unknown):
    session = create(server, project, name="keep")
    body = {key: value.format(project=project) if isinstance(value, str) else value
            for key, value in body.items()}
    error = assert_error(server.api(method, path.format(sid=session["id"]), json=body), 400,
                         f"Unknown field '{unknown}'")
    assert "this endpoint takes" in error["message"]
    assert [s["name"] for s in server.api("GET", "sessions").json()["sessions"]] == ["keep"]
    assert server.api("GET", "theme").json()["theme"]["id"] == "dracula"


@pytest.mark.parametrize("query", ["limit=", "limit=%205", "limit=1_0", "limit=%D9%A5",
                                   "limit=5&limit=6"])
def test_an_integer_query_argument_is_plain_digits_given_once(server, query):
    assert_error(server.api("GET", f"history?{query}"), 400, "Query parameter 'limit'")
    assert server.api("GET", "history?limit=5").status_code == 200


def test_real_answers_fit_the_response_schemas(server, project, document):
    check = ResponseChecker(document)
    missing_sid = str(uuid.uuid4())
    created = check(server.api("POST", "sessions", json={
        "name": "schema", "cwd": str(project), "toolType": "terminal"}), "/sessions", "post")
    sid, tab = created["session"]["id"], created["session"]["aiTabs"][0]["id"]
    agent = check(server.api("POST", "sessions", json={
        "name": "agent", "cwd": str(project), "toolType": "claude-code", "groupName": "g"}),
        "/sessions", "post")["session"]["id"]
    check(server.api("POST", "sessions", json={"name": "x", "cwd": "relative",
                                               "toolType": "terminal"}), "/sessions", "post")
    check(server.api("GET", "sessions"), "/sessions", "get")
    check(server.api("GET", "tmux"), "/tmux", "get")
    check(server.api("GET", "dirs"), "/dirs", "get")
    check(server.api("GET", "dirs?path=/"), "/dirs", "get")
    one = "/session/{sessionId}"
    check(server.api("GET", f"session/{sid}"), one, "get")
    check(server.api("GET", f"session/{missing_sid}"), one, "get")
    check(server.api("PATCH", f"session/{sid}", json={"name": "renamed"}), one, "patch")
    check(server.api("PATCH", f"session/{sid}", json={}), one, "patch")
    sent = check(server.api("POST", f"session/{sid}/send", json={"command": "echo hi"}),
                 one + "/send", "post")
    assert sent["success"] is True
    check(server.api("POST", f"session/{sid}/send", json={"command": ""}), one + "/send",
          "post")
    check(server.api("POST", f"session/{sid}/interrupt"), one + "/interrupt", "post")
    check(server.api("POST", f"session/{missing_sid}/interrupt"), one + "/interrupt", "post")
    check(server.api("POST", f"session/{sid}/keys", json={"keys": ["Enter"]}), one + "/keys",
          "post")  # 409: nothing running
    check(server.api("GET", f"session/{sid}/screen"), one + "/screen", "get")
    check(server.api("POST", f"session/{sid}/input", json={"data": "x"}), one + "/input",
          "post")
    check(server.api("POST", f"session/{sid}/resize", json={"cols": 80, "rows": 24}),
          one + "/resize", "post")
    check(server.api("POST", f"session/{sid}/resize", json={"cols": 0, "rows": 24}),
          one + "/resize", "post")
    check(server.api("GET", f"session/{sid}/logs?limit=5"), one + "/logs", "get")
    check(server.api("GET", f"session/{sid}/logs?limit=0"), one + "/logs", "get")
    new_tab = check(server.api("POST", f"session/{agent}/tabs", json={"name": "t2"}),
                    one + "/tabs", "post")["tab"]["id"]
    tabs = one + "/tabs/{tabId}"
    check(server.api("PATCH", f"session/{agent}/tabs/{new_tab}", json={"starred": True}), tabs,
          "patch")
    check(server.api("POST", f"session/{agent}/tabs/{new_tab}/select"), tabs + "/select",
          "post")
    check(server.api("DELETE", f"session/{agent}/tabs/{new_tab}"), tabs, "delete")
    check(server.api("DELETE", f"session/{sid}/tabs/{tab}"), tabs, "delete")  # 409: last tab
    check(server.api("GET", f"session/{agent}/approvals"), one + "/approvals", "get")
    check(server.api("POST", f"session/{agent}/approvals/{uuid.uuid4()}",
                     json={"decision": "allow"}), one + "/approvals/{approvalId}", "post")
    check(server.api("POST", f"session/{sid}/offline"), one + "/offline", "post")
    check(server.api("POST", f"session/{sid}/send", json={"command": "true"}), one + "/send",
          "post")  # 403: offline
    check(server.api("POST", f"session/{sid}/live"), one + "/live", "post")
    check(server.api("GET", "history"), "/history", "get")
    check(server.api("GET", "history?limit=x"), "/history", "get")
    check(server.api("GET", "theme"), "/theme", "get")
    check(server.api("PUT", "theme", json={"id": "nord"}), "/theme", "put")
    check(server.api("PUT", "theme", data="id=nord"), "/theme", "put")  # 415
    check(server.api("GET", "themes"), "/themes", "get")
    check(server.api("GET", "commands"), "/commands", "get")
    check(server.api("GET", "agents"), "/agents", "get")
    check(server.api("GET", "push/key"), "/push/key", "get")
    check(server.api("GET", "push/subscriptions"), "/push/subscriptions", "get")
    check(server.api("POST", "push/subscriptions", json={"subscription": {
        "endpoint": "http://push.example/x", "keys": {"p256dh": "x", "auth": "y"}}}),
        "/push/subscriptions", "post")  # 400: not https
    check(server.api("DELETE", f"push/subscriptions/{uuid.uuid4()}"),
          "/push/subscriptions/{subscriptionId}", "delete")
    check(server.api("GET", "whoami"), "/whoami", "get")
    check(server.api("GET", "audit?limit=3"), "/audit", "get")
    check(server.api("GET", "openapi.json"), "/openapi.json", "get")
    check(server.api("DELETE", f"session/{sid}"), one, "delete")
    check(server.api("DELETE", f"session/{sid}"), one, "delete")  # 404 now
    answered = {(path, method) for path, method, _ in check.checked}
    assert answered == documented_routes(document), "routes this test never called: " + str(
        documented_routes(document) - answered)


def test_a_rate_limited_answer_fits_its_schema(make_server, document, tmp_path):
    server = make_server("--rate-limit-get", "2", data_dir=tmp_path / "limited")
    check = ResponseChecker(document)
    answers = [server.api("GET", "sessions") for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert [check(answer, "/sessions", "get")["timestamp"] > 0 for answer in answers]


# Checks run by schemathesis: every answer to generated requests must be no 5xx, a status
# and content type the document lists, a body that fits its schema, and invalid requests
# (negative cases) must be refused. positive_data_acceptance is left out because validity
# depends on state the schema cannot hold: a folder that exists, a session or tab id that
# exists, a key that something running can take; those give documented 4xx answers.
SCHEMATHESIS_CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
                       "response_schema_conformance,negative_data_rejection")
SCHEMATHESIS_TIMEOUT_S = 600  # a bound on a hung run, not a speed check (~1 min idle)


def test_schemathesis_finds_no_failure(make_server, project):
    """Every operation, none excluded (tests/schemathesis.toml says how ids are chosen).

    Generated requests act on one real terminal session in a scratch folder: what they send
    is random text, run by the shell as commands, under the test's HOME.
    """
    server = make_server("--token", str(uuid.uuid4()), "--no-rate-limit", "--max-sessions",
                         "5", "--interrupt-grace-s", "0.2")
    api = server.url("api")
    env = {**os.environ, "NO_COLOR": "1",
           "MAESTRO_ST_SESSION": create(server, project, name="fuzzed")["id"],
           "MAESTRO_ST_OTHER_SESSION": create(server, project, name="deleted")["id"]}
    command = [sys.executable, "-c", "from schemathesis.cli import schemathesis; schemathesis()",
               "--config-file", str(ROOT / "tests" / "schemathesis.toml"),
               "run", api + "/openapi.json", "--url", api,
               "--checks", SCHEMATHESIS_CHECKS, "--phases", "examples,coverage,fuzzing",
               "--max-examples", "10", "--seed", "1", "--workers", "1",
               "--request-timeout", "20", "--suppress-health-check", "all"]
    result = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True,
                            timeout=SCHEMATHESIS_TIMEOUT_S)
    report = re.sub(r"(.)\1{40,}", r"\1\1\1...", result.stdout)  # long generated strings
    assert result.returncode == 0, report[-15000:] + result.stderr[-3000:]
