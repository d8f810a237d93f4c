"""`python3 -m bench all --quick` runs end to end and reports every goal of issue 14."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_bench_writes_results_with_every_goal(tmp_path):
    out = tmp_path / "quick.json"
    done = subprocess.run([sys.executable, "-m", "bench", "all", "--quick", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    goals = json.loads(out.read_text())["goals"]
    assert set(goals) == {"output_throughput", "latency", "fan_out", "rest", "big_pages",
                          "idle_clients"}
    assert all(speed > 0 for speed in goals["output_throughput"]["mb_per_s"].values())
    assert goals["latency"]["websocket"]["samples"] > 0
    assert goals["latency"]["rest"]["samples"] > 0
    # ttyd, the reference of goals 1-2, is required: .ci/run builds it (.ci/build-ttyd), and a
    # bench that silently dropped it would report no ratio to ttyd.
    throughput = goals["output_throughput"]
    assert throughput.get("ratio_ours_to_ttyd", 0) > 0, throughput["ttyd"]
    assert goals["latency"]["ttyd"]["samples"] > 0
    assert all(ratio > 0 for ratio in goals["latency"]["ratios_ours_to_ttyd"].values())
    assert all(entry["ours"]["messages_per_client"] > 0
               for entry in goals["fan_out"]["by_clients"].values())
    assert all(rate > 0 for rate in goals["rest"]["requests_per_s"]["ours"].values())
    opened = goals["big_pages"]["open"]
    assert opened["entries"]["big"] > opened["entries"]["small"]
    assert all(ms > 0 for by in opened["ms"].values() for ms in by.values())
    rss = goals["big_pages"]["rss"]
    assert rss["sessions_with_output"] == rss["sessions"] and rss["peak_mb"] > 0
    assert goals["idle_clients"]["ours"]["rss_kib_at_10"] > 0
