"""Every goal of issue 14 against its reference, in one invocation.

    python3 -m bench all [--quick] [--out FILE]

Starts our server (wsgi.py) and the reference servers as separate processes on 127.0.0.1,
measures in interleaved rounds (A, B, A, B) and writes medians and ratios as JSON (default
bench/results/all.json, or quick.json with --quick) and, for the full run, PNG charts
beside it. --quick is a smoke run of seconds (CI checks it produces every goal).
Single benches: python3 -m bench.<name> (fanout, pty_throughput, ws_client_cost, ...).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import requests

from bench import big_pages, fanout, output_path, reference, rest, temporary_server, ws_client_cost

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Sizes:
    seq_lines: int
    throughput_rounds: int
    latency_samples: int
    fanout_clients: tuple[int, ...]
    fanout_lines: int
    fanout_rounds: int
    rest_sessions: int
    rest_seconds: float
    rest_rounds: int
    idle_clients: int


QUICK = Sizes(seq_lines=20_000, throughput_rounds=1, latency_samples=5, fanout_clients=(2,),
              fanout_lines=3_000, fanout_rounds=1, rest_sessions=3, rest_seconds=1,
              rest_rounds=1, idle_clients=10)
FULL = Sizes(seq_lines=1_000_000, throughput_rounds=3, latency_samples=60,
             fanout_clients=(10, 50, 100), fanout_lines=100_000, fanout_rounds=2,
             rest_sessions=20, rest_seconds=5, rest_rounds=3, idle_clients=1000)


def fan_out(sizes: Sizes, node_missing: str | None) -> dict:
    """CPU per delivered message and msg/s per client, ours vs Fastify + ws, per client count."""
    by_clients = {}
    for clients in sizes.fanout_clients:
        ours_runs, reference_runs = [], []
        for _ in range(sizes.fanout_rounds):
            kept: list[str] = []
            ours_runs.append(fanout.measure_run("wsgi.py", clients, sizes.fanout_lines, kept))
            if node_missing is None:
                with reference.bodies(b"{}", b"{}", kept) as files, \
                        reference.fastify(files) as bare:
                    reference_runs.append(fanout.measure_reference(bare, clients, kept))
        entry = {"ours": _medians(ours_runs)}
        if reference_runs:
            entry["fastify+ws"] = _medians(reference_runs)
            entry["ratio_cpu_per_message_ours_to_fastify"] = _ratio(
                entry["ours"]["cpu_s_per_1000_messages"],
                entry["fastify+ws"]["cpu_s_per_1000_messages"])
            entry["ratio_msg_per_s_ours_to_fastify"] = _ratio(
                entry["ours"]["messages_per_s_per_client"],
                entry["fastify+ws"]["messages_per_s_per_client"])
        by_clients[str(clients)] = entry
    return {"command": f"seq 1 {sizes.fanout_lines}; exit", "by_clients": by_clients,
            "reference": node_missing or "bare Fastify + ws (bench/reference/server.js)",
            "goal": "CPU per delivered message ≤ 1.5× Fastify + ws; msg/s per client ≥ it "
                    "at 100 clients"}


def idle_clients(sizes: Sizes, node_missing: str | None) -> dict:
    """Threads, fds and RSS of N idle WebSocket clients, ours (wsgi.py) vs Fastify + ws."""
    result = {"clients": sizes.idle_clients,
              "ours": ws_client_cost.measure("wsgi.py", sizes.idle_clients),
              "goal": "1,000 idle clients under 100 KiB each, the thread count flat"}
    if node_missing is None:
        result["fastify+ws"] = ws_client_cost.measure_fastify(sizes.idle_clients)
    return result


def _ratio(ours: float, theirs: float) -> float | None:
    """None when the reference spent too little to measure (under a clock tick of CPU in
    a --quick run)."""
    return ours / theirs if theirs > 0 else None


def _medians(runs: list[dict[str, float]]) -> dict[str, float]:
    import statistics
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def rest_goal(sizes: Sizes, node_missing: str | None) -> dict:
    with temporary_server("wsgi.py") as (server, project):
        sessions_url, session_url = rest.prepare(server, project, sizes.rest_sessions, 200)
        ours = {"GET sessions": sessions_url, "GET session/<id>": session_url}
        sessions_body = requests.get(sessions_url, timeout=30).content
        session_body = requests.get(session_url, timeout=30).content
        with reference.bodies(sessions_body, session_body, []) as files:
            references: dict[str, dict[str, str]] = {}
            with reference.flask_waitress(files) as flask:
                references["flask+waitress"] = {"GET sessions": flask.url + "/sessions",
                                                "GET session/<id>": flask.url + "/session"}
                if node_missing is None:
                    with reference.fastify(files) as bare:
                        references["fastify"] = {"GET sessions": bare.url + "/sessions",
                                                 "GET session/<id>": bare.url + "/session"}
                        result = rest.measure(ours, references, sizes.rest_rounds,
                                              sizes.rest_seconds)
                else:
                    result = rest.measure(ours, references, sizes.rest_rounds, sizes.rest_seconds)
    result.update(sessions=sizes.rest_sessions, body_bytes={
        "GET sessions": len(sessions_body), "GET session/<id>": len(session_body)},
        goal="GET sessions ≥ 0.8× and GET session/<id> ≥ 0.4× bare Fastify serving the "
             "same bytes")
    return result


def machine() -> dict:
    with open("/proc/cpuinfo") as info:
        model = next((line.split(":", 1)[1].strip() for line in info
                      if line.startswith("model name")), "unknown")
    return {"cpu": model, "cores": len(__import__("os").sched_getaffinity(0)),
            "python": platform.python_version(), "system": platform.platform()}


def run_all(sizes: Sizes, quick: bool) -> dict:
    node_missing = reference.node_unavailable()
    started = time.time()
    results = {
        "machine": machine(), "sizes": asdict(sizes),
        "goals": {
            "output_throughput": output_path.throughput(sizes.seq_lines,
                                                        sizes.throughput_rounds),
            "latency": output_path.latency(sizes.latency_samples),
            "fan_out": fan_out(sizes, node_missing),
            "rest": rest_goal(sizes, node_missing),
            "big_pages": big_pages.measure(big_pages.QUICK if quick else big_pages.FULL),
            "idle_clients": idle_clients(sizes, node_missing),
        },
    }
    results["seconds"] = round(time.time() - started, 1)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["all"])
    parser.add_argument("--quick", action="store_true", help="a smoke run of seconds")
    parser.add_argument("--out", type=Path, help="where the results JSON goes")
    args = parser.parse_args()
    out = args.out or RESULTS / ("quick.json" if args.quick else "all.json")
    results = run_all(QUICK if args.quick else FULL, args.quick)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    if not args.quick:
        from bench import charts  # matplotlib: bench/requirements.txt, not needed by --quick
        charts.draw(results, out.parent)
    print(json.dumps({name: goal.get("ratios") or goal.get("mb_per_s") or goal
                      for name, goal in results["goals"].items()}, indent=2, ensure_ascii=False))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
