"""The results table of BENCHMARKS.md, from `python3 -m bench all`'s JSON.

    python3 -m bench.report [bench/results/all.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.__main__ import RESULTS


def rows(results: dict) -> list[str]:
    goals = results["goals"]
    out = goals["output_throughput"]
    lines = ["| goal | measured | reference | ratio | target |", "|---|---|---|---|---|"]
    ours_mb = out["mb_per_s"]["ours (wsgi.py → 1 WS client)"]
    ttyd_mb = out["mb_per_s"].get("ttyd 1.7.7 (→ 1 WS client)")
    if ttyd_mb is None:
        ttyd_ref, ttyd_ratio = f"{out['ttyd']}; ", ""
    else:
        cpu_ratio = out["ratio_cpu_per_mb_ours_to_ttyd"]
        ttyd_ref = (f"ttyd {ttyd_mb:.2f} MB/s, {out['ttyd_server_cpu_s_per_mb']:.3f} CPU-s/MB; ")
        ttyd_ratio = (f"{out['ratio_ours_to_ttyd']:.2f}× ttyd (CPU/MB "
                      + (f"{cpu_ratio:.1f}×); " if cpu_ratio else "n/a); "))
    lines.append(f"| 1. output `{out['command']}` → 1 WS client | {ours_mb:.2f} MB/s, "
                 f"{out['ours_server_cpu_s_per_mb']:.3f} server CPU-s/MB | {ttyd_ref}PTY alone "
                 f"{out['mb_per_s']['pty alone (Python)']:.2f} MB/s; raw pipe "
                 f"{out['mb_per_s']['raw pipe']:.0f} MB/s | {ttyd_ratio}"
                 f"{out['ratio_ours_to_pty']:.2f}× PTY; {out['ratio_ours_to_pipe']:.3f}× pipe | "
                 "≥ 0.5× PTY and ttyd, CPU/MB ≤ 5× ttyd |")
    lat = goals["latency"]
    if "ttyd" in lat:
        ratios = lat["ratios_ours_to_ttyd"]
        lat_ref = f"ttyd p50 {lat['ttyd']['p50_ms']:.2f} / p99 {lat['ttyd']['p99_ms']:.2f} ms"
        lat_ratio = (f"WS {ratios['websocket p50']:.0f}× / {ratios['websocket p99']:.0f}×; "
                     f"REST {ratios['rest p50']:.0f}× / {ratios['rest p99']:.0f}× ttyd")
    else:
        lat_ref, lat_ratio = lat.get("ttyd_reference", "ttyd not measured"), "—"
    lines.append(f"| 2. `echo hi` → first byte | WS p50 {lat['websocket']['p50_ms']:.1f} / "
                 f"p99 {lat['websocket']['p99_ms']:.1f} ms; REST p50 {lat['rest']['p50_ms']:.1f} "
                 f"/ p99 {lat['rest']['p99_ms']:.1f} ms | {lat_ref} | {lat_ratio} | "
                 "WS ≤ 1 / 8 ms, REST p50 ≤ 2 ms |")
    for clients, entry in goals["fan_out"]["by_clients"].items():
        ours = entry["ours"]
        ref = entry.get("fastify+ws")
        ratio = (f"CPU/msg {_times(entry['ratio_cpu_per_message_ours_to_fastify'])}; msg/s "
                 f"{_times(entry['ratio_msg_per_s_ours_to_fastify'])}" if ref else "—")
        reference = (f"{ref['cpu_s_per_1000_messages']:.3f} CPU-s/1k msg, "
                     f"{ref['messages_per_s_per_client']:.0f} msg/s/client" if ref else "n/a")
        lines.append(f"| 3. fan-out, {clients} clients | {ours['cpu_s_per_1000_messages']:.3f} "
                     f"CPU-s/1k msg, {ours['messages_per_s_per_client']:.0f} msg/s/client | "
                     f"Fastify + ws: {reference} | {ratio} | CPU ≤ 1.5×, msg/s ≥ 1× |")
    idle = goals.get("idle_clients")
    if idle is not None:
        n = idle["clients"]
        ref = idle.get("fastify+ws")
        lines.append(f"| 3. {n:,} idle WS clients | {_idle(idle['ours'], n)} | "
                     f"Fastify + ws: {_idle(ref, n) if ref else 'n/a'} | — | "
                     "< 100 KiB per client, threads flat |")
    rest = goals["rest"]
    for endpoint, rate in rest["requests_per_s"]["ours"].items():
        refs = "; ".join(f"{name} {rates[endpoint]:,.0f}/s"
                         for name, rates in rest["requests_per_s"].items() if name != "ours")
        ratios = "; ".join(f"{name.split('/')[1]} {by[endpoint]:.2f}×"
                           for name, by in rest["ratios"].items())
        target = "≥ 0.8× Fastify" if endpoint == "GET sessions" else "≥ 0.4× Fastify"
        lines.append(f"| 4. REST {endpoint} ({rest['body_bytes'][endpoint]:,} bytes) | "
                     f"{rate:,.0f}/s | {refs} | {ratios} | {target} |")
    if "big_pages" in goals:
        lines.extend(big_page_rows(goals["big_pages"]))
    return lines


def big_page_rows(big: dict) -> list[str]:
    """Goal 5: opening a big session against a small one, and RSS with busy sessions."""
    opened, rss = big["open"], big["rss"]
    entries = opened["entries"]
    lines = []
    for name, by in opened["ms"].items():
        ratio = opened["ratios"][f"{name} big/small"]
        lines.append(f"| 5. {name}, {entries['big']:,} log entries | {by['big']:.1f} ms | "
                     f"{entries['small']:,} entries: {by['small']:.1f} ms | {ratio:.2f}× | "
                     "≈ 1× |")
    lines.append(f"| 5. server RSS, {rss['sessions']} busy sessions ({rss['seconds']:.0f} s of "
                 f"`{rss['command']}`, 1 WS client) | peak {rss['peak_mb']:.0f} MB | idle "
                 f"{rss['idle_mb']:.0f} MB | — | < {rss['target_mb']} MB |")
    return lines


def _idle(cost: dict, clients: int) -> str:
    return (f"threads {cost['threads_at_1']} → {cost[f'threads_at_{clients}']}, "
            f"{cost['fds_per_client']:.0f} fd and {cost['rss_kib_per_client']:.0f} KiB "
            "per client")


def _times(ratio: float | None) -> str:
    """A ratio as shown; None: the reference's figure was too small to measure."""
    return "n/m" if ratio is None else f"{ratio:.2f}×"


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS / "all.json"
    print("\n".join(rows(json.loads(path.read_text()))))


if __name__ == "__main__":
    main()
