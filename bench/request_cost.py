"""Server CPU per REST request, in process: this checkout vs another (before/after).

    python3 -m bench.request_cost --tree OTHER_CHECKOUT [requests]

Each checkout builds its app in a child process (the same flags as the servers, logging to
a file as in production, no sockets in the way) with 5 terminal sessions, then times N
`GET sessions` and N `GET session/<id>` through the whole WSGI stack (token guard, access
log, limiter hooks, CORS, JSON) with process CPU time. Interleaved A, B, A, B; medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROUNDS = 5
CHILD = r"""
import json, sys, tempfile, time
sys.path.insert(0, sys.argv[1])
from app.launcher import prepare
count = int(sys.argv[2])
with tempfile.TemporaryDirectory() as tmp:
    launch = prepare(["--host", "127.0.0.1", "--port", "0", "--data-dir", tmp,
                      "--no-rate-limit"])
    token = launch.app.extensions["maestro"].token
    client = launch.app.test_client()
    ids = [client.post(f"/{token}/api/sessions", json={"name": f"s{n}", "cwd": tmp,
           "toolType": "terminal"}).get_json()["session"]["id"] for n in range(5)]
    result = {}
    for name, path in (("GET sessions", f"/{token}/api/sessions"),
                       ("GET session/<id>", f"/{token}/api/session/{ids[0]}")):
        for _ in range(50):
            client.get(path)
        started = time.process_time()
        for _ in range(count):
            assert client.get(path).status_code == 200
        result[name] = (time.process_time() - started) / count * 1e6
    launch.shutdown()
    print(json.dumps(result))
"""


def cost(tree: Path, count: int) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", CHILD, str(tree), str(count)], cwd=tree,
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("requests", type=int, nargs="?", default=2000)
    parser.add_argument("--tree", type=Path, required=True)
    args = parser.parse_args()
    trees = {"this": Path(__file__).resolve().parent.parent, "other": args.tree.resolve()}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    for _ in range(ROUNDS):
        for name, tree in trees.items():
            runs[name].append(cost(tree, args.requests))
    medians = {name: {endpoint: statistics.median(run[endpoint] for run in by)
                      for endpoint in by[0]} for name, by in runs.items()}
    for name, by in medians.items():
        print(f"{name:6}", ", ".join(f"{e} {us:.0f} µs CPU" for e, us in by.items()))
    print("this/other:", ", ".join(f"{e} {medians['this'][e] / medians['other'][e]:.2f}"
                                   for e in medians["this"]))


if __name__ == "__main__":
    main()
