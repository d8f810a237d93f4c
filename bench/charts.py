"""PNG charts of `python3 -m bench all`'s results (matplotlib, bench/requirements.txt)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def draw(results: dict, folder: Path) -> list[Path]:
    goals = results["goals"]
    written = [_bars(goals["output_throughput"]["mb_per_s"], "MB/s (log scale)",
                     "Output throughput: seq → client", folder / "throughput.png", log=True)]
    fan = goals["fan_out"]["by_clients"]
    clients = [int(n) for n in fan]
    figure, (cpu, rate) = plt.subplots(1, 2, figsize=(10, 4))
    for server in ("ours", "fastify+ws"):
        if all(server in fan[str(n)] for n in clients):
            cpu.plot(clients, [fan[str(n)][server]["cpu_s_per_1000_messages"] for n in clients],
                     marker="o", label=server)
            rate.plot(clients, [fan[str(n)][server]["messages_per_s_per_client"]
                                for n in clients], marker="o", label=server)
    cpu.set(xlabel="clients", ylabel="server CPU-s per 1,000 messages", title="Fan-out cost")
    rate.set(xlabel="clients", ylabel="messages/s per client", title="Fan-out rate")
    cpu.legend()
    rate.legend()
    figure.tight_layout()
    figure.savefig(folder / "fanout.png", dpi=100)
    plt.close(figure)
    written.append(folder / "fanout.png")
    rest = goals["rest"]["requests_per_s"]
    figure, axes = plt.subplots(figsize=(8, 4))
    endpoints = list(rest["ours"])
    width = 0.8 / len(rest)
    for index, (server, rates) in enumerate(rest.items()):
        axes.bar([n + index * width for n in range(len(endpoints))],
                 [rates[e] for e in endpoints], width, label=server)
    axes.set_xticks([n + width for n in range(len(endpoints))], endpoints)
    axes.set(ylabel="requests/s", title="REST, same bytes")
    axes.legend()
    figure.tight_layout()
    figure.savefig(folder / "rest.png", dpi=100)
    plt.close(figure)
    written.append(folder / "rest.png")
    return written


def _bars(values: dict[str, float], label: str, title: str, path: Path, log: bool) -> Path:
    figure, axes = plt.subplots(figsize=(8, 4))
    axes.barh(list(values), list(values.values()))
    axes.set(xlabel=label, title=title)
    if log:
        axes.set_xscale("log")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
