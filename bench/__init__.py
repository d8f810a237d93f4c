"""Benchmarks: ratios measured side by side in one run (python3 -m bench.<name>)."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import ServerProcess

SERVERS = ("run.py", "wsgi.py")


@contextlib.contextmanager
def temporary_server(script: str, *flags: str) -> Iterator[tuple[ServerProcess, Path]]:
    """A real server on 127.0.0.1 with a throw-away data dir and HOME, and a project folder."""
    with tempfile.TemporaryDirectory() as tmp:
        home, project = Path(tmp) / "home", Path(tmp) / "project"
        home.mkdir()
        project.mkdir()
        server = ServerProcess(Path(tmp) / "data", home, ["--no-rate-limit", *flags], script)
        server.start()
        try:
            yield server, project
        finally:
            server.stop()
