"""Goals 1 and 2 of issue 14: output throughput and the latency of `echo hi`.

    python3 -m bench.output_path [--tree OTHER_CHECKOUT] [--lines N] [--rounds R]
                                 [--latency SAMPLES]

Alone it measures this checkout; with `--tree`, the same runs are made with another
checkout's server (a `git worktree` of the commit before a change), interleaved, for the
before/after table of BENCHMARKS.md. Both views are measured: the log view (one client
receiving session:output) and the terminal view (the client also asks for the raw stream,
`?pty=1`, and counts session:pty bytes).

Throughput: `seq 1 N` from a terminal session of our server (wsgi.py) to one WebSocket
client, against the same command typed into ttyd 1.7.7's shell (bench/ttyd.py; built by
.ci/build-ttyd, else "ttyd not built: ..." and it is left out), read through a PTY alone
(ptyprocess, in Python) and a raw pipe, interleaved.
Latency: `echo hi` → the first byte of its output at a WebSocket client, sent over the
WebSocket (`send_command`) and over REST (`POST session/<id>/send`), and typed into ttyd.
"""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import time
from pathlib import Path

from ptyprocess import PtyProcess

from bench import temporary_server, ttyd
from bench.fanout import cpu_seconds
from tests.wsclient import LiveClient

READ = 65536
TIMEOUT_S = 300


def seq_bytes(lines: int) -> int:
    """How many bytes `seq 1 lines` writes (a pty adds a CR per line)."""
    return sum(len(str(n)) + 1 for n in range(1, lines + 1))


def pipe_seconds(lines: int) -> float:
    started = time.perf_counter()
    with subprocess.Popen(["seq", "1", str(lines)], stdout=subprocess.PIPE) as process:
        while process.stdout.read(READ):
            pass
    return time.perf_counter() - started


def pty_seconds(lines: int) -> float:
    started = time.perf_counter()
    process = PtyProcess.spawn(["seq", "1", str(lines)])
    try:
        while True:
            try:
                process.read(READ)
            except EOFError:
                break
    finally:
        process.close(force=True)
    return time.perf_counter() - started


def _terminal(server, project) -> str:
    created = server.api("POST", "sessions", json={
        "name": "bench", "cwd": str(project), "toolType": "terminal"}).json()
    return created["session"]["id"]


def _is_output(message: dict, session_id: str) -> bool:
    return (message["type"] == "session:output" and message.get("sessionId") == session_id
            and message["entry"]["source"] != "user")


def _client(server, session_id: str, pty: bool, timeout: float = 10) -> LiveClient:
    """A client scoped to the session; with `pty`, one of the terminal view. It skips the
    client library's pure-Python UTF-8 check, which would make it, not the server, the
    bottleneck (a browser checks in native code)."""
    url = f"ws://127.0.0.1:{server.port}/{server.token}/ws?sessionId={session_id}"
    return LiveClient(server, timeout=timeout, url=url + ("&pty=1" if pty else ""),
                      validate_utf8=False)


def ours_throughput(lines: int, script: str = "wsgi.py", pty: bool = False) -> dict[str, float]:
    """Seconds and server CPU-seconds for `seq` through a terminal session to one client
    (`pty`: the terminal view's client, which also receives the raw stream)."""
    with temporary_server(script) as (server, project):
        session_id = _terminal(server, project)
        client = _client(server, session_id, pty, TIMEOUT_S)
        time.sleep(0.5)  # the shell's prompt is up
        before = cpu_seconds(server.process.pid)
        started = time.perf_counter()
        server.api("POST", f"session/{session_id}/send", json={"command": f"seq 1 {lines}"})
        received = 0
        while True:
            message = client.next(TIMEOUT_S)
            if _is_output(message, session_id) and not pty:
                received += len(message["entry"]["text"].encode())
            elif message["type"] == "session:pty" and pty:
                received += len(message["data"]) * 3 // 4
            elif message["type"] == "session:exit" and message["sessionId"] == session_id:
                break
            client.messages.clear()
        seconds = time.perf_counter() - started
        spent = cpu_seconds(server.process.pid) - before
        client.ws.close()
    return {"seconds": seconds, "cpu_s": spent, "received_bytes": received}


# The command's output is its first line; the command then runs on (a build, a server).
STILL_RUNNING = "echo hi; sleep 0.2"


def echo_latencies(count: int, script: str = "wsgi.py",
                   running: bool = False) -> dict[str, list[float]]:
    """Milliseconds from sending `echo hi` to its first output at the client, per path;
    with `running`, also over the WebSocket for a command that runs on after that line."""
    results: dict[str, list[float]] = {"websocket": [], "rest": []}
    if running:
        results["websocket, command still running"] = []
    with temporary_server(script) as (server, project):
        session_id = _terminal(server, project)
        client = _client(server, session_id, pty=False)
        time.sleep(0.5)
        for _ in range(count):
            for path in results:  # interleaved
                started = time.perf_counter()
                if path == "rest":
                    server.api("POST", f"session/{session_id}/send", json={"command": "echo hi"})
                else:
                    client.send({"type": "send_command", "sessionId": session_id,
                                 "command": "echo hi" if path == "websocket" else STILL_RUNNING})
                client.wait_for(lambda m: _is_output(m, session_id))
                results[path].append((time.perf_counter() - started) * 1000)
                client.wait_for(lambda m: m["type"] == "session:state"
                                and m.get("sessionId") == session_id and m["state"] == "idle")
                client.messages.clear()
                client._cursor = 0
        client.ws.close()
    return results


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


OURS = "ours (wsgi.py → 1 WS client)"
TTYD = "ttyd 1.7.7 (→ 1 WS client)"


def throughput(lines: int, rounds: int) -> dict:
    """MB/s per path (medians of interleaved rounds), server CPU per MB (ours, ttyd's) and
    the ratios; ttyd is left out, with the reason, when it is not built."""
    size_mb = seq_bytes(lines) / 1e6
    ttyd_missing = ttyd.unavailable()
    runs: dict[str, list[float]] = {OURS: [], "pty alone (Python)": [], "raw pipe": []}
    cpu_per_mb: dict[str, list[float]] = {OURS: []}
    if ttyd_missing is None:
        runs[TTYD], cpu_per_mb[TTYD] = [], []
    for _ in range(rounds):
        measured = {OURS: ours_throughput(lines)}
        if ttyd_missing is None:
            measured[TTYD] = ttyd.throughput(lines)
        for name, run in measured.items():
            runs[name].append(size_mb / run["seconds"])
            cpu_per_mb[name].append(run["cpu_s"] / size_mb)
        runs["pty alone (Python)"].append(size_mb / pty_seconds(lines))
        runs["raw pipe"].append(size_mb / pipe_seconds(lines))
    mb_s = {name: statistics.median(values) for name, values in runs.items()}
    cpu = {name: statistics.median(values) for name, values in cpu_per_mb.items()}
    ours_mb_s = mb_s[OURS]
    result = {
        "command": f"seq 1 {lines}", "megabytes": round(size_mb, 2), "rounds": rounds,
        "mb_per_s": mb_s, "runs_mb_per_s": runs,
        "ours_server_cpu_s_per_mb": cpu[OURS],
        "ratio_ours_to_pty": ours_mb_s / mb_s["pty alone (Python)"],
        "ratio_ours_to_pipe": ours_mb_s / mb_s["raw pipe"],
        "ttyd": ttyd_missing or f"{ttyd.binary()}: `seq 1 {lines}; exit` typed into its bash",
        "goal": "≥ 0.5× ttyd and ≥ 0.5× the PTY alone; server CPU per MB ≤ 5× ttyd",
        "met_vs_pty": ours_mb_s / mb_s["pty alone (Python)"] >= 0.5,
    }
    if ttyd_missing is None:
        result["ttyd_server_cpu_s_per_mb"] = cpu[TTYD]
        result["ratio_ours_to_ttyd"] = ours_mb_s / mb_s[TTYD]
        # None when ttyd spent under a clock tick of CPU (a --quick run)
        result["ratio_cpu_per_mb_ours_to_ttyd"] = (cpu[OURS] / cpu[TTYD] if cpu[TTYD] > 0
                                                   else None)
        result["met"] = (result["met_vs_pty"] and result["ratio_ours_to_ttyd"] >= 0.5
                         and result["ratio_cpu_per_mb_ours_to_ttyd"] is not None
                         and result["ratio_cpu_per_mb_ours_to_ttyd"] <= 5)
    return result


def _latency_summary(measured: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    return {path: {"p50_ms": percentile(values, 0.5), "p99_ms": percentile(values, 0.99),
                   "samples": len(values)} for path, values in measured.items()}


def latency(count: int, per_server: int = 20) -> dict:
    """p50/p99 of `echo hi` over our WebSocket and REST, and typed into ttyd (when built),
    a fresh server per `per_server` samples, interleaved; ours/ttyd ratios."""
    ttyd_missing = ttyd.unavailable()
    measured: dict[str, list[float]] = {}
    for chunk in range(math.ceil(count / per_server)):
        samples = min(per_server, count - chunk * per_server)
        for path, values in echo_latencies(samples).items():
            measured.setdefault(path, []).extend(values)
        if ttyd_missing is None:
            measured.setdefault("ttyd", []).extend(ttyd.echo_latencies(samples))
    summary = _latency_summary(measured)
    result = {
        "command": "echo hi", **summary,
        "goal": "WebSocket send_command p50 ≤ 1 ms, p99 ≤ 8 ms; REST send p50 ≤ 2 ms "
                "(ttyd 0.15 / 4.2 ms, from the issue)",
        "met": summary["websocket"]["p50_ms"] <= 1 and summary["websocket"]["p99_ms"] <= 8
        and summary["rest"]["p50_ms"] <= 2,
        "ttyd_reference": ttyd_missing or f"{ttyd.binary()}: `echo hi` typed into its bash",
    }
    if ttyd_missing is None:
        result["ratios_ours_to_ttyd"] = {
            f"{path} {share}": summary[path][f"{share}_ms"] / summary["ttyd"][f"{share}_ms"]
            for path in ("websocket", "rest") for share in ("p50", "p99")}
    return result


def main() -> None:
    """This checkout against --tree's (or alone): MB/s of both views, CPU per MB, latency."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tree", type=Path, help="another checkout to compare with")
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3, help="0: no throughput runs")
    parser.add_argument("--latency", type=int, default=40, help="echo samples per path")
    args = parser.parse_args()
    scripts = {"this": "wsgi.py"}
    if args.tree:
        scripts["other"] = str(args.tree.resolve() / "wsgi.py")
    if args.latency:
        _compare_latency(scripts, args.latency)
    if args.rounds:
        _compare_throughput(scripts, args.lines, args.rounds)


def _compare_latency(scripts: dict[str, str], samples: int, per_server: int = 20) -> None:
    """Latency of each checkout, a fresh server per `per_server` samples, interleaved."""
    measured: dict[str, dict[str, list[float]]] = {name: {} for name in scripts}
    ttyd_missing = ttyd.unavailable()
    if ttyd_missing is None:
        measured["ttyd"] = {"typed": []}
    else:
        print(ttyd_missing)
    for _ in range(math.ceil(samples / per_server)):
        for name, script in scripts.items():
            for path, values in echo_latencies(per_server, script, running=True).items():
                measured[name].setdefault(path, []).extend(values)
        if ttyd_missing is None:
            measured["ttyd"]["typed"].extend(ttyd.echo_latencies(per_server))
    for name, by_path in measured.items():
        print(f"latency {name:6} " + "  ".join(
            f"{path} p50 {values['p50_ms']:.2f} / p99 {values['p99_ms']:.2f} ms"
            for path, values in _latency_summary(by_path).items()))


def _compare_throughput(scripts: dict[str, str], lines: int, rounds: int) -> None:
    """MB/s and CPU per MB of each checkout, both views, and ttyd, interleaved; then the
    PTY alone."""
    size_mb = seq_bytes(lines) / 1e6
    ttyd_missing = ttyd.unavailable()
    for view, pty in (("log view", False), ("terminal view", True)):
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in scripts}
        if ttyd_missing is None:
            runs["ttyd"] = []
        elif not pty:
            print(ttyd_missing)
        for _ in range(rounds):
            for name, script in scripts.items():  # interleaved
                runs[name].append(ours_throughput(lines, script, pty))
            if ttyd_missing is None:
                runs["ttyd"].append(ttyd.throughput(lines))
        medians = {}
        for name, measured in runs.items():
            mb_s = statistics.median(size_mb / run["seconds"] for run in measured)
            cpu = statistics.median(run["cpu_s"] / size_mb for run in measured)
            medians[name] = (mb_s, cpu)
            print(f"{view:14} {name:6} {mb_s:6.2f} MB/s  {cpu:.3f} CPU-s/MB  "
                  f"runs {[round(size_mb / run['seconds'], 2) for run in measured]}")
        if "ttyd" in medians:
            ttyd_mb_s, ttyd_cpu = medians["ttyd"]
            print(f"{view:14} this/ttyd {medians['this'][0] / ttyd_mb_s:.2f}× MB/s, "
                  + (f"{medians['this'][1] / ttyd_cpu:.2f}× CPU-s/MB" if ttyd_cpu else
                     "ttyd's CPU under a clock tick"))
    pty_mb_s = statistics.median(size_mb / pty_seconds(lines) for _ in range(rounds))
    print(f"pty alone {pty_mb_s:.2f} MB/s")


if __name__ == "__main__":
    main()
