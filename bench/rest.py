"""Goal 4 of issue 14: `GET sessions` and `GET session/<id>` against bare references.

Our server (wsgi.py) holds N terminal sessions, one with some output; the bare Fastify and
bare Flask+waitress references serve the very bytes it answered. Requests per second come
from wrk (Debian's package) with keep-alive connections, or, where wrk is missing (--quick
in CI), from a small keep-alive client in Python; the same client for every server.
"""

from __future__ import annotations

import http.client
import re
import shutil
import statistics
import subprocess
import threading
import time
from urllib.parse import urlsplit

WRK_CONNECTIONS = 8


def requests_per_second(url: str, seconds: float) -> float:
    if shutil.which("wrk"):
        duration = f"-d{max(1, round(seconds))}s"
        done = subprocess.run(["wrk", "-t1", f"-c{WRK_CONNECTIONS}", duration, url],
                              capture_output=True, text=True, timeout=seconds + 60)
        match = re.search(r"Requests/sec:\s*([\d.]+)", done.stdout)
        if not match or "Non-2xx" in done.stdout:
            raise RuntimeError("wrk failed: " + done.stdout + done.stderr)
        return float(match.group(1))
    return _python_client(url, seconds)


def _python_client(url: str, seconds: float, connections: int = 2) -> float:
    parts = urlsplit(url)
    counts: list[int] = []
    deadline = time.monotonic() + seconds

    def loop() -> None:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        count = 0
        while time.monotonic() < deadline:
            connection.request("GET", parts.path)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"{url}: {response.status}")
            count += 1
        connection.close()
        counts.append(count)

    threads = [threading.Thread(target=loop) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 60)
    return sum(counts) / seconds


def prepare(server, project, sessions: int, output_lines: int) -> tuple[str, str]:
    """Create the sessions on our server; the URLs of the list and of the busy session."""
    ids = []
    for n in range(sessions):
        created = server.api("POST", "sessions", json={
            "name": f"bench {n}", "cwd": str(project), "toolType": "terminal"}).json()
        ids.append(created["session"]["id"])
    server.api("POST", f"session/{ids[0]}/send", json={"command": f"seq 1 {output_lines}"})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        detail = server.api("GET", f"session/{ids[0]}").json()["session"]
        if detail["state"] == "idle" and len(detail.get("shellLogs", [])) > 1:
            break
        time.sleep(0.2)
    return server.url("api/sessions"), server.url(f"api/session/{ids[0]}")


def measure(ours: dict[str, str], references: dict[str, dict[str, str]], rounds: int,
            seconds: float) -> dict:
    """Median requests/s per server and endpoint (interleaved rounds) and the ratios."""
    servers = {"ours": ours, **references}
    runs = {name: {endpoint: [] for endpoint in ours} for name in servers}
    for _ in range(rounds):
        for endpoint in ours:
            for name, urls in servers.items():
                runs[name][endpoint].append(requests_per_second(urls[endpoint], seconds))
    medians = {name: {endpoint: statistics.median(values) for endpoint, values in by.items()}
               for name, by in runs.items()}
    ratios = {f"ours/{name}": {endpoint: medians["ours"][endpoint] / medians[name][endpoint]
                               for endpoint in ours} for name in references}
    return {"requests_per_s": medians, "runs": runs, "ratios": ratios,
            "client": "wrk" if shutil.which("wrk") else "python keep-alive client"}


def main() -> None:
    """Before/after: our GET sessions and GET session/<id>, this checkout vs --tree's."""
    import argparse
    from pathlib import Path

    from bench import temporary_server

    parser = argparse.ArgumentParser(description="REST requests/s, this checkout vs another")
    parser.add_argument("--tree", type=Path, required=True, help="another checkout")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args()
    with temporary_server("wsgi.py") as (this, this_project), \
            temporary_server(str(args.tree.resolve() / "wsgi.py")) as (other, other_project):
        urls = [dict(zip(("GET sessions", "GET session/<id>"),
                         prepare(server, project, 20, 200), strict=True))
                for server, project in ((this, this_project), (other, other_project))]
        result = measure(urls[0], {"other": urls[1]}, args.rounds, args.seconds)
    for name, rates in result["requests_per_s"].items():
        print(f"{'this' if name == 'ours' else name:6}", ", ".join(
            f"{endpoint} {rate:,.0f}/s" for endpoint, rate in rates.items()))
    print("this/other:", ", ".join(f"{endpoint} {ratio:.2f}"
                                   for endpoint, ratio in result["ratios"]["ours/other"].items()))


if __name__ == "__main__":
    main()
