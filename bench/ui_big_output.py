"""Big output in the phone UI: `seq 1 200000` in the log view and in the terminal view.

    python3 -m bench.ui_big_output [lines] [before-ref]

Drives Debian's Chromium (Playwright, Pixel 7 emulation) against a throw-away server and
reports, per view: ms from sending the command to the last line painted, ms from the server's
last output (the last `session:output` / `session:pty` message) to that paint, the longest
frame (requestAnimationFrame gaps), how many frames took over 100 ms, the longest long task
(PerformanceObserver), and the most CPU time one task of the page's main thread used (from a
Chromium trace: on a loaded machine the wall-clock figures include the time the page waited
for a core, the CPU figure does not); and the time to open a session that already holds that
log. "before" is the UI as committed (static/ at `before-ref`, default HEAD, served to the
page by request interception from the same server in the same run), "after" the working tree.
Targets: no frame over 100 ms, the last line within 1.5 s of the server finishing.
"""

from __future__ import annotations

import json
import mimetypes
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

from bench import temporary_server
from tests.ui.conftest import ARGS, CHROMIUM

ROOT = Path(__file__).resolve().parent.parent
DEVICE = "Pixel 7"
TIMEOUT_MS = 120000

# Timestamps of the socket messages that carry output, and a frame monitor.
MONITOR = """
(() => {
  const Socket = window.WebSocket;
  window.bench = { lastOutputAt: 0, longTasks: [] };
  const output = /"type":"session:(output|pty)"/;
  window.WebSocket = class extends Socket {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (m) => {
        if (output.test(String(m.data).slice(0, 40))) bench.lastOutputAt = performance.now();
      });
    }
  };
  new PerformanceObserver((list) => {
    for (const task of list.getEntries()) bench.longTasks.push([task.startTime, task.duration]);
  }).observe({ type: 'longtask', buffered: true });
})();
"""

# Watch frames until `painted()` holds; resolves with the timings.
MEASURE = """async ({ lastLine, view, sentAt }) => {
  const rows = () => [...document.querySelectorAll('.xterm-rows > div')];
  const painted = view === 'terminal'
    ? () => rows().some((row) => row.textContent.trim() === lastLine)
    : () => {
        const nodes = document.querySelectorAll('main.log [data-entry-id]');
        const last = nodes[nodes.length - 1];
        return !!last && ('\\n' + last.textContent).includes('\\n' + lastLine + '\\n');
      };
  return new Promise((resolve) => {
    let previous = performance.now();
    let longest = 0;
    let slow = 0;
    const frame = (now) => {
      longest = Math.max(longest, now - previous);
      if (now - previous > 100) slow += 1;
      previous = now;
      if (painted()) {
        const tasks = bench.longTasks.filter(([start]) => start >= sentAt).map(([, ms]) => ms);
        resolve({ sendToPaint: now - sentAt, afterServer: now - bench.lastOutputAt,
                  longestFrame: longest, slowFrames: slow,
                  longestTask: tasks.length ? Math.max(...tasks) : 0 });
      } else requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  });
}"""


TRACE_CATEGORIES = ["toplevel", "disabled-by-default-devtools.timeline", "__metadata"]


def traced(browser, page, action, *args) -> dict:
    """Run `action(page, *args)` under a Chromium trace; add `cpuTask`: the most CPU time (ms)
    one task of the page's main thread used meanwhile."""
    browser.start_tracing(page=page, categories=TRACE_CATEGORIES)
    try:
        result = action(page, *args)
    finally:
        events = json.loads(browser.stop_tracing())["traceEvents"]
    threads = {(event["pid"], event["tid"]): event["args"].get("name") for event in events
               if event.get("name") == "thread_name"}
    cpu = [event["tdur"] / 1000 for event in events
           if event.get("name") == "RunTask" and "tdur" in event
           and threads.get((event["pid"], event["tid"])) == "CrRendererMain"]
    return {**result, "cpuTask": max(cpu, default=0)}


def committed_static(ref: str, into: Path) -> Path:
    """static/ as committed at `ref` (the UI before a change), extracted into `into`."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "static"],
                             check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "static"


def serve_from(context, static: Path) -> None:
    """Serve the static files from `static` instead of the server's. (The page itself stays
    the server's: a page fulfilled by interception may not open a socket to 127.0.0.1 under
    Chromium's local network access checks; it differs from HEAD's by one stylesheet link.)"""
    def static_file(route):
        relative = route.request.url.split("/static/", 1)[1].split("?")[0]
        path = static / relative
        if not path.is_file():
            route.fulfill(status=404)
            return
        script = path.suffix in (".js", ".mjs")
        kind = "text/javascript" if script else mimetypes.guess_type(path.name)[0]
        route.fulfill(body=path.read_bytes(), content_type=kind or "application/octet-stream")

    context.route("**/static/**", static_file)


def new_session(server, project, name: str) -> str:
    body = {"name": name, "cwd": str(project), "toolType": "terminal"}
    return server.api("POST", "sessions", json=body).json()["session"]["id"]


def goto_session(browser, playwright, server, session_id: str, static: Path | None):
    """A phone page on the session, with the frame monitor, serving `static` if given."""
    context = browser.new_context(**playwright.devices[DEVICE], service_workers="block")
    if static:
        serve_from(context, static)
    context.add_init_script(MONITOR)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(server.url(f"session/{session_id}"))
    return context, page


def open_page(browser, playwright, server, session_id: str, static: Path | None):
    context, page = goto_session(browser, playwright, server, session_id, static)
    page.locator(".session-top .state-idle").wait_for()
    return context, page


def run_in_log_view(page, command: str, last_line: str) -> dict:
    page.get_by_role("textbox", name="Command").fill(command)
    sent_at = page.evaluate("performance.now()")
    page.get_by_role("button", name="Send", exact=True).click()
    return page.evaluate(MEASURE, {"lastLine": last_line, "view": "log", "sentAt": sent_at})


def open_terminal_view(page) -> None:
    page.get_by_role("button", name="Terminal view").click()
    page.locator(".termview .xterm-rows").wait_for()
    page.wait_for_timeout(1000)  # the screen painted


def run_in_terminal_view(page, command: str, last_line: str) -> dict:
    page.locator(".termview .xterm-helper-textarea").focus()
    page.keyboard.type(command)
    sent_at = page.evaluate("performance.now()")
    page.keyboard.press("Enter")
    return page.evaluate(MEASURE, {"lastLine": last_line, "view": "terminal", "sentAt": sent_at})


def open_long_log(browser, playwright, server, session_id: str, static: Path | None,
                  last_line: str) -> dict:
    context, page = goto_session(browser, playwright, server, session_id, static)
    result = page.evaluate(MEASURE, {"lastLine": last_line, "view": "log", "sentAt": 0})
    context.close()
    return {"open": result["sendToPaint"], "longestFrame": result["longestFrame"]}


def measure(label: str, action, *args) -> dict:
    try:
        return action(*args)
    except PlaywrightError as err:  # a view that cannot do it (a server without it): say so
        print(f"  {label}: failed ({str(err).splitlines()[0][:100]})")
        return {}


def row(name: str, result: dict, keys: tuple[str, ...]) -> str:
    cells = [f"{result[key]:10.0f}" if key in result else f"{'-':>10}" for key in keys]
    return f"{name:26}" + "".join(cells)


def main() -> None:
    lines = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
    before_ref = sys.argv[2] if len(sys.argv) > 2 else "HEAD"
    command, last_line = f"seq 1 {lines}", str(lines)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp, temporary_server("run.py") as (server, project), \
            sync_playwright() as playwright:
        before = committed_static(before_ref, Path(tmp))
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        for ui, static in (("before", before), ("after", None)):
            session_id = new_session(server, project, f"log-{ui}")
            context, page = open_page(browser, playwright, server, session_id, static)
            results[f"log view, {ui}"] = measure(ui, traced, browser, page, run_in_log_view,
                                                 command, last_line)
            context.close()
            results[f"open long log, {ui}"] = measure(
                ui, open_long_log, browser, playwright, server, session_id, static, last_line)
        for ui, static in (("before", before), ("after", None)):
            session_id = new_session(server, project, f"terminal-{ui}")
            context, page = open_page(browser, playwright, server, session_id, static)
            open_terminal_view(page)
            results[f"terminal view, {ui}"] = measure(
                ui, traced, browser, page, run_in_terminal_view, command, last_line)
            context.close()
        browser.close()

    print(f"`{command}` in Chromium ({DEVICE}); milliseconds")
    keys = ("sendToPaint", "afterServer", "longestFrame", "slowFrames", "longestTask", "cpuTask")
    headings = ("send→paint", "srv→paint", "max frame", ">100ms", "max task", "cpu task")
    print(f"{'':26}" + "".join(f"{heading:>10}" for heading in headings))
    for name, result in results.items():
        if not name.startswith("open"):
            print(row(name, result, keys))
    print(f"{'':26}{'open':>10}{'max frame':>10}")
    for name, result in results.items():
        if name.startswith("open"):
            print(row(name, result, ("open", "longestFrame")))


if __name__ == "__main__":
    main()
