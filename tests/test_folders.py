"""Session folders in the user's terms: `~` expanded, and GET dirs (the folder picker) listing
sub-folders inside the home folder only, hostile names as text, symlinks out of home refused."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from tests.test_sessions_api import assert_error


def folders(server, path: str | None = None, status: int = 200) -> dict:
    response = server.api("GET", "dirs", params={"path": path} if path is not None else None)
    assert response.status_code == status, response.text
    return response.json()


def test_a_tilde_folder_is_the_servers_home(server, home):
    (home / "code" / "myapp").mkdir(parents=True)
    created = server.api("POST", "sessions", json={
        "name": "tilde", "cwd": "~/code/myapp", "toolType": "terminal"})
    assert created.status_code == 201, created.text
    session = created.json()["session"]
    assert session["cwd"] == str(home / "code" / "myapp")

    moved = server.api("PATCH", f"session/{session['id']}", json={"cwd": "~"})
    assert moved.status_code == 200, moved.text
    assert moved.json()["session"]["cwd"] == str(home)


def test_folder_errors_speak_of_folders(server):
    body = {"name": "rel", "cwd": "code/myapp", "toolType": "terminal"}
    error = assert_error(server.api("POST", "sessions", json=body), 400,
                         "Folder must be a full path")
    assert "cwd" not in error["message"]
    assert_error(server.api("POST", "sessions", json={**body, "cwd": "~/missing"}), 400,
                 "does not exist")
    assert server.api("GET", "sessions").json()["count"] == 0


def test_dirs_lists_sub_folders_of_home_by_name(server, home):
    for name in ("zeta", "Alpha", ".hidden", "<img src=x onerror=alert(1)>"):
        (home / name).mkdir()
    (home / "notes.txt").write_text("a file, not a folder")
    listing = folders(server)
    assert listing["path"] == listing["home"] == os.path.realpath(home)
    assert listing["parent"] is None
    assert [f["name"] for f in listing["folders"]] == ["<img src=x onerror=alert(1)>", "Alpha",
                                                      "zeta"]
    assert listing["count"] == 3 and listing["truncated"] is False

    (home / "Alpha" / "inner").mkdir()
    inner = folders(server, "~/Alpha")
    assert inner["folders"] == [{"name": "inner", "path": str(home / "Alpha" / "inner")}]
    assert inner["parent"] == str(home)


def test_dirs_refuses_folders_outside_home(server, home, tmp_path):
    outside = tmp_path / "outside"
    (outside / "secret").mkdir(parents=True)
    (home / "link-out").symlink_to(outside)
    (home / "inside").mkdir()
    (home / "link-in").symlink_to(home / "inside")
    assert_error(server.api("GET", "dirs", params={"path": str(outside)}), 403,
                 "outside your home folder")
    assert_error(server.api("GET", "dirs", params={"path": "~/link-out"}), 403,
                 "outside your home folder")
    assert_error(server.api("GET", "dirs", params={"path": "~/../"}), 403, "outside")
    assert [f["name"] for f in folders(server)["folders"]] == ["inside", "link-in"]


@pytest.mark.parametrize(("path", "status", "fragment"), [
    ("relative/path", 400, "Folder must be a full path"),
    ("~/notes.txt", 400, "is a file, not a folder"),
    ("~/nowhere", 404, "does not exist"),
    ("/tmp/a\0b", 400, "NUL"),
    ("/" + "a" * 5000, 400, "at most 4096"),
])
def test_dirs_bad_paths_are_clear_errors(server, home, path, status, fragment):
    (home / "notes.txt").write_text("x")
    assert_error(server.api("GET", "dirs", params={"path": path}), status, fragment)


def test_dirs_caps_the_count_and_may_browse_outside_when_configured(make_server, home, tmp_path):
    outside = tmp_path / "elsewhere"
    for index in range(5):
        (outside / f"d{index}").mkdir(parents=True)
    server = make_server("--token", str(uuid.uuid4()), "--no-rate-limit",
                         "--browse-outside-home", "--dirs-max", "3")
    listing = folders(server, str(outside))
    assert [f["name"] for f in listing["folders"]] == ["d0", "d1", "d2"]
    assert listing["truncated"] is True
    assert listing["parent"] == str(Path(os.path.realpath(outside)).parent)


def test_a_link_the_server_may_not_follow_is_a_clear_error(make_server, home):
    unreadable = "/proc/1/root"  # a link only a process allowed to trace pid 1 may read
    try:
        os.readlink(unreadable)
    except OSError:
        pass
    else:
        pytest.skip("the tests may read /proc/1/root here: no link they cannot follow")
    (home / "pid1").symlink_to(unreadable)
    (home / "code").mkdir()
    for flags in ((), ("--browse-outside-home",)):
        server = make_server("--token", str(uuid.uuid4()), "--no-rate-limit", *flags)
        for path in ("~/pid1", "~/pid1/tmp", "/proc/1/root/tmp"):
            assert_error(server.api("GET", "dirs", params={"path": path}), 403,
                         "cannot be read")
        assert [f["name"] for f in folders(server)["folders"]] == ["code"]
        server.stop()
