"""The data dir is private to its owner, and the persistent token is kept out of maestro.db."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT, wait_for


@contextmanager
def umask(mask: int) -> Iterator[None]:
    """Run the block (and the servers it starts, which inherit it) under `mask`."""
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def modes(data_dir: Path) -> dict[str, int]:
    """The permission bits of the data dir and everything in it, by relative path."""
    found = {".": stat.S_IMODE(data_dir.stat().st_mode)}
    for path in data_dir.rglob("*"):
        found[str(path.relative_to(data_dir))] = stat.S_IMODE(path.stat().st_mode)
    return found


def database_bytes(data_dir: Path) -> bytes:
    """maestro.db and its WAL and shared-memory files, as they are on disk."""
    return b"".join(path.read_bytes() for path in sorted(data_dir.glob("maestro.db*")))


def write_some_data(server, project: Path) -> None:
    """Settings, a session, its logs and a history entry: every table gets rows."""
    assert server.api("PUT", "theme", json={"id": "nord"}).status_code == 200
    created = server.api("POST", "sessions", json={"name": "p", "cwd": str(project),
                                                   "toolType": "terminal"})
    assert created.status_code == 201, created.text
    sid = created.json()["session"]["id"]
    server.api("POST", f"session/{sid}/send", json={"command": "echo private"})
    wait_for(lambda: server.api("GET", "history").json()["count"] == 1)


@pytest.mark.parametrize("mask", [0o022, 0o000], ids=["umask-022", "umask-000"])
def test_data_dir_is_0700_and_its_files_0600_whatever_the_umask(make_server, tmp_path, project,
                                                                 mask):
    data = tmp_path / "data"
    with umask(mask):
        server = make_server("--no-rate-limit", "--persistent-token", data_dir=data)
    write_some_data(server, project)
    found = modes(data)
    for name, mode in found.items():
        expected = 0o700 if (data / name).is_dir() else 0o600
        assert mode == expected, (name, oct(mode))
    assert {"maestro.db", "maestro.db-wal", "maestro.db-shm", "maestro.lock", "token",
            "run"} <= set(found), found
    assert any(name.startswith("run/") for name in found), found  # the shell's rc files


def test_an_open_data_dir_and_database_are_tightened(make_server, tmp_path):
    data = tmp_path / "old"
    (data / "run").mkdir(parents=True)
    for path in (data, data / "run"):
        os.chmod(path, 0o755)
    (data / "maestro.db").touch()
    os.chmod(data / "maestro.db", 0o644)
    # As an earlier version left them: SQLite gives -wal and -shm the database's mode, and an
    # open connection keeps them on disk while the server starts.
    db = sqlite3.connect(data / "maestro.db")
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.commit()
        assert modes(data)["maestro.db-wal"] == modes(data)["maestro.db-shm"] == 0o644
        server = make_server("--no-rate-limit", data_dir=data)
        found = modes(data)
    finally:
        db.close()
    assert found["."] == found["run"] == 0o700
    assert found["maestro.db"] == found["maestro.db-wal"] == found["maestro.db-shm"] == 0o600
    wait_for(lambda: "tightened" in server.log_text)
    assert server.log_text.count(f"{data} was open to other local users (mode 0755)") == 1


def test_persistent_token_is_not_in_the_database_and_survives_restarts(make_server, tmp_path,
                                                                       project):
    data = tmp_path / "data"
    first = make_server("--no-rate-limit", "--persistent-token", data_dir=data)
    write_some_data(first, project)
    token = first.token.encode()
    assert token not in database_bytes(data)  # while running: the WAL holds the latest writes
    first.stop()
    assert token not in database_bytes(data)
    assert (data / "token").read_text() == first.token + "\n"

    second = make_server("--no-rate-limit", "--persistent-token", data_dir=data)
    assert second.token == first.token
    assert requests.get(second.url("api/sessions"), timeout=10).status_code == 200
    assert token not in database_bytes(data)


def test_a_token_stored_by_an_earlier_version_is_moved_out_of_the_database(make_server,
                                                                           tmp_path):
    data = tmp_path / "legacy"
    data.mkdir()
    current = str(uuid.uuid4())
    with sqlite3.connect(data / "maestro.db") as db:  # what earlier versions wrote
        db.execute("CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO settings VALUES ('persistent_token', ?)", (current,))
    db.close()
    assert current.encode() in database_bytes(data)

    server = make_server("--no-rate-limit", "--persistent-token", data_dir=data)
    assert server.token == current  # the paired phone keeps working
    # A DELETE alone would leave the bytes in the page's free space.
    assert current.encode() not in database_bytes(data)
    assert (data / "token").read_text() == current + "\n"
    wait_for(lambda: "moved the persistent token out of the database" in server.log_text)
    server.stop()
    again = make_server("--no-rate-limit", "--persistent-token", data_dir=data)
    assert again.token == current


def test_a_damaged_token_file_stops_start_up_until_rotated(make_server, tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "token").write_text("not a token\n")
    env = {key: value for key, value in os.environ.items() if not key.startswith("MAESTRO_")}
    result = subprocess.run([sys.executable, str(ROOT / "run.py"), "--port", "0", "--data-dir",
                             str(data), "--persistent-token"], capture_output=True, text=True,
                            timeout=60, env=env)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"maestro-web: error: token file {data / 'token'}: "
                                     "the first line must be a UUID v4")
    rotated = make_server("--no-rate-limit", "--rotate-token", data_dir=data)
    assert (data / "token").read_text() == rotated.token + "\n"
