"""The README's install commands, run as a new user would: in a fresh copy of the clone, with
this Python and with Debian's externally-managed system Python, and `pip install .` (what
`pipx install .` does) for the `maestro-web` command.

Packages come from the wheel cache `.ci/run` fills (`<cache>/wheels`), never the network.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests

from tests.conftest import LOCAL_URL, ROOT, wait_for

CACHE = Path(os.environ.get("MAESTRO_CI_CACHE", Path.home() / ".cache" / "maestro-web-ci"))
WHEELS = CACHE / "wheels"
INSTALL_TIMEOUT_S = 240  # creating a venv and installing from local wheels: seconds, not minutes
COPY_IGNORED = shutil.ignore_patterns(".git", ".venv", "__pycache__", "build", "*.egg-info",
                                      "node_modules", ".pytest_cache", ".ruff_cache", "data")
EXTERNALLY_MANAGED = "externally-managed-environment"

pytestmark = pytest.mark.skipif(
    not WHEELS.is_dir() and not os.environ.get("CI"),
    reason=f"no wheel cache at {WHEELS} (bash .ci/run fills it)")


def readme_command(requirements: str) -> str:
    """The README's command line that sets up a venv from `requirements`."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for line in text.splitlines():
        if line.startswith("python3 -m venv") and f"-r {requirements} " in line:
            return line
    raise AssertionError(f"the README has no `python3 -m venv ... -r {requirements}` command")


def externally_managed_python() -> str | None:
    """A system Python whose stdlib carries the EXTERNALLY-MANAGED marker (Debian's)."""
    for marker in sorted(glob.glob("/usr/lib/python3*/EXTERNALLY-MANAGED")):
        executable = Path("/usr/bin") / Path(marker).parent.name
        if executable.exists():
            return str(executable)
    return None


class Shell:
    """A copy of the clone and an environment whose `python3` is a given interpreter."""

    def __init__(self, tmp_path: Path, python: str) -> None:
        self.clone = tmp_path / "maestro-web"
        shutil.copytree(ROOT, self.clone, ignore=COPY_IGNORED)
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        wrapper = bin_dir / "python3"
        wrapper.write_text(f'#!/bin/sh\nexec "{python}" "$@"\n')
        wrapper.chmod(0o755)
        home = tmp_path / "home"
        home.mkdir()
        self.env = {key: value for key, value in os.environ.items()
                    if not key.startswith(("MAESTRO_", "PIP_", "VIRTUAL_ENV", "PYTHON"))}
        self.env.update(
            PATH=f"{bin_dir}{os.pathsep}{self.env.get('PATH', '/usr/bin:/bin')}",
            HOME=str(home), XDG_DATA_HOME=str(home / "data"),
            PIP_NO_INDEX="1", PIP_FIND_LINKS=str(WHEELS), PIP_DISABLE_PIP_VERSION_CHECK="1",
            MAESTRO_HOST="127.0.0.1", PYTHONUNBUFFERED="1")

    def run(self, command: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-c", command], cwd=self.clone, env=self.env,
                              capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)

    def serve(self, command: str) -> None:
        """Run a command that ends in a server; check its banner and that it answers."""
        process = subprocess.Popen(["bash", "-c", command], cwd=self.clone, env=self.env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   start_new_session=True)
        output: list[str] = []
        threading.Thread(target=lambda: output.extend(process.stdout), daemon=True).start()
        try:
            match = wait_for(lambda: LOCAL_URL.search("".join(output))
                             or process.poll() is not None,
                             timeout=INSTALL_TIMEOUT_S, interval=0.2)
            assert match is not True, "".join(output)
            assert "Maestro Web is running." in "".join(output)
            base = f"http://127.0.0.1:{match.group(2)}/{match.group(3)}/"
            page = requests.get(base, timeout=30)
            assert page.status_code == 200 and "static/js/app.js" in page.text
            script = requests.get(base + "static/js/app.js", timeout=30)
            assert script.status_code == 200, "the UI's files were not found"
            sessions = requests.get(base + "api/sessions", timeout=30)
            assert sessions.status_code == 200 and "sessions" in sessions.json()
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(30)


def test_readme_commands_install_run_and_test_in_a_fresh_venv(tmp_path: Path) -> None:
    shell = Shell(tmp_path, sys.executable)
    shell.serve(readme_command("requirements.txt"))
    assert (shell.clone / ".venv" / "bin" / "python").exists()
    # The test command, on one quick test file instead of the whole suite.
    tests = shell.run(readme_command("requirements-dev.txt") + " tests/test_config.py -q")
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert re.search(r"\d+ passed", tests.stdout), tests.stdout


def test_readme_command_works_with_an_externally_managed_system_python(tmp_path: Path) -> None:
    python = externally_managed_python()
    if python is None:
        if os.environ.get("CI"):
            pytest.fail("no externally-managed system Python (.ci/run installs Debian's)")
        pytest.skip("no /usr/lib/python3*/EXTERNALLY-MANAGED here")
    shell = Shell(tmp_path, python)
    # What the README used to say, and what a new user on Debian or Ubuntu then saw.
    refused = shell.run("python3 -m pip install -r requirements.txt")
    assert refused.returncode != 0 and EXTERNALLY_MANAGED in refused.stdout + refused.stderr
    shell.serve(readme_command("requirements.txt"))


def test_pip_install_of_the_package_gives_a_maestro_web_command_that_serves_the_ui(
        tmp_path: Path) -> None:
    shell = Shell(tmp_path, sys.executable)
    built = shell.run("python3 -m venv ../tool && ../tool/bin/pip install .")
    assert built.returncode == 0, built.stdout + built.stderr
    shutil.rmtree(shell.clone)  # the command must not need the clone
    shell.clone.mkdir()
    shell.serve("../tool/bin/maestro-web")
