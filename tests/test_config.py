"""Settings precedence and start-up refusals."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from app.config import ConfigError, load_settings
from tests.conftest import ROOT


def test_flags_beat_environment_beat_file_beat_defaults(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('rate-limit-get = 7\nrate_limit_post = 8\nshell = "/bin/sh"\n'
                      'log-level = "debug"\n')
    env = {"MAESTRO_RATE_LIMIT_POST": "9", "MAESTRO_SHELL": "/bin/bash"}
    settings = load_settings(["--config", str(config), "--shell", "/usr/bin/bash"], env)
    assert settings.rate_limit_get == 7          # file
    assert settings.rate_limit_post == 9         # environment beats file
    assert settings.shell == "/usr/bin/bash"     # flag beats environment
    assert settings.log_level == "DEBUG"
    assert settings.rate_limit_window_ms == 60_000  # default


def test_config_file_defaults_to_data_dir(tmp_path):
    (tmp_path / "config.toml").write_text("max-clients = 5\n"
                                          '[[commands]]\ncommand = "/deploy"\n')
    settings = load_settings(["--data-dir", str(tmp_path)], {})
    assert settings.max_clients == 5
    assert settings.commands == [{"command": "/deploy", "description": ""}]


def test_port_alone_means_8080_and_default_is_random():
    assert load_settings(["--port"], {}).port == 8080
    assert load_settings([], {}).port == 0


def test_token_comes_from_the_environment_or_a_token_file(tmp_path):
    token = str(uuid.uuid4())
    assert load_settings([], {"MAESTRO_TOKEN": token}).token == token
    token_file = tmp_path / "token"
    token_file.write_text(f"  {token}  \nthe rest is ignored\n")
    assert load_settings(["--token-file", str(token_file)], {}).token == token
    assert load_settings([], {"MAESTRO_TOKEN_FILE": str(token_file)}).token == token
    config = tmp_path / "config.toml"
    config.write_text(f'token-file = "{token_file}"\n')
    assert load_settings(["--config", str(config)], {}).token == token


@pytest.mark.parametrize("content, fragment", [
    (None, "cannot read token file"),
    ("", "has no token on its first line"),
    ("\n" + "6f1c5a0e-7d43-4b8e-9a0f-2c6d8e1b3a57\n", "has no token on its first line"),
    ("secret-with-a-typo\n", "the first line must be a UUID v4"),
    (b"\xff\xfe", "is not UTF-8 text"),
])
def test_bad_token_files_are_refused_without_quoting_them(tmp_path, content, fragment):
    token_file = tmp_path / "token"
    if isinstance(content, bytes):
        token_file.write_bytes(content)
    elif content is not None:
        token_file.write_text(content)
    with pytest.raises(ConfigError) as caught:
        load_settings(["--token-file", str(token_file)], {})
    assert fragment in str(caught.value) and str(token_file) in str(caught.value)
    assert "typo" not in str(caught.value)


@pytest.mark.parametrize("kind", ["fifo", "device", "folder"])
def test_a_token_file_that_is_not_a_regular_file_is_refused_at_once(tmp_path, kind):
    path = {"fifo": tmp_path / "fifo", "device": "/dev/zero", "folder": tmp_path}[kind]
    if kind == "fifo":
        os.mkfifo(path)  # reading it would block start-up for good
    with pytest.raises(ConfigError, match="is not a regular file"):
        load_settings(["--token-file", str(path)], {})


def test_only_the_start_of_a_huge_token_file_is_read(tmp_path):
    token = uuid.uuid4()
    huge = tmp_path / "token"
    huge.write_text(f"{token}\n" + "x" * 50_000_000)
    assert load_settings(["--token-file", str(huge)], {}).token == str(token)
    (tmp_path / "one-line").write_text("y" * 50_000_000)
    with pytest.raises(ConfigError, match="must be a UUID v4"):
        load_settings(["--token-file", str(tmp_path / "one-line")], {})


def test_a_token_file_is_refused_with_another_token_or_rotation(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(f"{uuid.uuid4()}\n")
    with pytest.raises(ConfigError, match="cannot both be given"):
        load_settings(["--token-file", str(token_file)], {"MAESTRO_TOKEN": str(uuid.uuid4())})
    with pytest.raises(ConfigError, match="--rotate-token cannot be used with"):
        load_settings(["--token-file", str(token_file), "--rotate-token"], {})


@pytest.mark.parametrize("argv, env, fragment", [
    (["--port", "70000"], {}, "--port"),
    (["--token", "not-a-uuid"], {}, "UUID v4"),
    (["--token", "6ba7b810-9dad-11d1-80b4-00c04fd430c8"], {}, "UUID v4"),  # a v1 UUID
    ([], {"MAESTRO_RATE_LIMIT_GET": "many"}, "MAESTRO_RATE_LIMIT_GET"),
    (["--log-level", "loud"], {}, "--log-level"),
    (["--config", "/nonexistent/config.toml"], {}, "cannot read config file"),
    (["--base-path", "maestro"], {}, "--base-path"),
    (["--base-path", "/a/../b"], {}, "--base-path"),
    (["--base-path", "/a b"], {}, "--base-path"),
    (["--base-path", "//evil.example"], {}, "--base-path"),
    (["--public-url", "example.com/maestro"], {}, "--public-url"),
    (["--public-url", "https://example.com/maestro?x=1"], {}, "--public-url"),
])
def test_bad_values_are_refused(argv, env, fragment):
    with pytest.raises(ConfigError) as caught:
        load_settings(argv, env)
    assert fragment in str(caught.value)


def test_unknown_key_in_config_file_is_refused(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("colour = 'red'\n")
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        load_settings(["--config", str(config)], {})


@pytest.mark.parametrize("script", ["run.py", "wsgi.py"])
@pytest.mark.parametrize("args", [
    ["--port", "70000"],
    ["--token", "1234"],
    ["--config", "{bad}"],
    ["--token-file", "{missing}"],
    ["--token-file", "{empty}"],
    ["--token-file", "{bad}"],
])
def test_bad_start_up_value_prints_one_line_and_exits_2(tmp_path, script, args):
    bad = tmp_path / "bad.toml"
    bad.write_text("this is = = not toml")
    empty = tmp_path / "empty"
    empty.write_text("\n")
    args = [arg.format(bad=bad, empty=empty, missing=tmp_path / "missing") for arg in args]
    env = {key: value for key, value in os.environ.items() if not key.startswith("MAESTRO_")}
    result = subprocess.run([sys.executable, str(ROOT / script), "--data-dir",
                             str(tmp_path / "d"), *args], capture_output=True, text=True,
                            timeout=60, env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("maestro-web: error:"), result.stderr


def test_a_second_server_on_the_same_data_dir_is_refused(make_server, tmp_path):
    first = make_server("--no-rate-limit", data_dir=tmp_path / "shared")
    env = {key: value for key, value in os.environ.items() if not key.startswith("MAESTRO_")}
    result = subprocess.run([sys.executable, str(ROOT / "run.py"), "--port", "0", "--data-dir",
                             str(tmp_path / "shared")], capture_output=True, text=True,
                            timeout=60, env=env)
    assert result.returncode == 2
    assert "in use by another Maestro Web server" in result.stderr
    assert first.api("GET", "sessions").status_code == 200


@pytest.mark.parametrize("given, kept", [("/maestro/", "/maestro"), ("/", ""), ("", ""),
                                         ("/apps/maestro-web", "/apps/maestro-web")])
def test_base_path_is_kept_without_its_trailing_slash(given, kept):
    assert load_settings(["--base-path", given], {}).base_path == kept
