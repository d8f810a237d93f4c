"""The Postman collection (postman/) run by newman against a real server, as a user would run
it: every request's pm.test assertions must pass, and it must leave nothing behind."""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from pathlib import Path

from tests.conftest import ROOT, wait_for

COLLECTION = ROOT / "postman" / "maestro-web.postman_collection.json"
ENVIRONMENT = ROOT / "postman" / "maestro-web.postman_environment.json"
CACHE = Path(os.environ.get("MAESTRO_CI_CACHE", Path.home() / ".cache" / "maestro-web-ci"))
NEWMAN = CACHE / "newman" / "node_modules" / ".bin" / "newman"  # .ci/install-newman
GET_QUOTA = 60  # small enough for the collection's 429 case to spend it quickly
WINDOW_MS = 5000
NEWMAN_TIMEOUT_S = 300


def run_newman(server, cwd: Path, report: Path) -> subprocess.CompletedProcess:
    assert NEWMAN.exists(), f"newman is not installed at {NEWMAN}: run .ci/install-newman"
    variables = {"baseUrl": server.base, "token": server.token, "cwd": str(cwd),
                 "getQuota": str(GET_QUOTA)}
    command = [str(NEWMAN), "run", str(COLLECTION), "--environment", str(ENVIRONMENT),
               *[arg for key, value in variables.items() for arg in ("--env-var",
                                                                      f"{key}={value}")],
               "--reporters", "cli,json", "--reporter-json-export", str(report),
               "--color", "off", "--disable-unicode", "--timeout-request", "20000"]
    return subprocess.run(command, capture_output=True, text=True, timeout=NEWMAN_TIMEOUT_S,
                          env={**os.environ, "NO_COLOR": "1"})


def test_the_postman_collection_runs_green_and_cleans_up(make_server, project, tmp_path):
    server = make_server("--token", str(uuid.uuid4()), "--rate-limit-get", str(GET_QUOTA),
                         "--rate-limit-window-ms", str(WINDOW_MS), "--rate-limit-post", "200",
                         "--interrupt-grace-s", "0.5")
    report = tmp_path / "newman.json"
    result = run_newman(server, project, report)
    assert result.returncode == 0, "newman's report:\n" + result.stdout[-15000:] + result.stderr
    stats = json.loads(report.read_text())["run"]["stats"]
    assert stats["assertions"]["failed"] == 0 and stats["assertions"]["total"] > 150
    # Once the spent GET quota is back: the collection deleted what it made and switched the
    # theme back.
    sessions = wait_for(lambda: _ok_json(server.api("GET", "sessions")), timeout=WINDOW_MS / 500)
    assert sessions["sessions"] == []
    assert server.api("GET", "theme").json()["theme"]["id"] == "dracula"


def _ok_json(response):
    return response.json() if response.status_code == 200 else None


def test_every_route_has_requests_in_the_collection():
    """A success and an error case per route: at least two requests for each."""
    from tests.test_openapi import served_routes

    urls = [(item["request"]["method"].lower(), item["request"]["url"].split("?")[0])
            for folder in json.loads(COLLECTION.read_text())["item"] for item in folder["item"]]
    thin = []
    for path, method in sorted(served_routes()):
        pattern = re.compile(re.escape("{{baseUrl}}/") + r"[^/]+/api" +
                             re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(path)) + "$")
        count = sum(1 for verb, url in urls if verb == method and pattern.match(url))
        if count < 2:
            thin.append(f"{method.upper()} {path} ({count} requests)")
    assert not thin, "postman/maestro-web.postman_collection.json lacks: " + "; ".join(thin)


def test_the_folders_follow_the_blueprints():
    folders = [item["name"] for item in json.loads(COLLECTION.read_text())["item"]]
    assert {"sessions", "commands", "theme", "history", "approvals"} <= set(folders)
    environment = {value["key"] for value in json.loads(ENVIRONMENT.read_text())["values"]}
    assert {"baseUrl", "token"} <= environment
