"""Settings: command-line flags > MAESTRO_* environment > TOML config file > defaults.

This is the only module that reads the environment. Every setting has a converter and a
default; a bad value raises ConfigError with one sentence the launcher prints before exiting 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import stat
import tomllib
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import platformdirs

from .sessions.agents.registry import AgentSpec, agents_from_config, builtin_agents

APP_NAME = "maestro-web"
ENV_PREFIX = "MAESTRO_"
CUSTOM_PORT_DEFAULT = 8080
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
TOKEN_FILE_READ_MAX = 4096  # bytes read of a token file: its first line is all we need


class ConfigError(ValueError):
    """A setting has a value the server cannot start with; the message names it."""


def _boolean(text: Any) -> bool:
    if isinstance(text, bool):
        return text
    value = str(text).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _integer(low: int, high: int | None = None) -> Callable[[Any], int]:
    def convert(text: Any) -> int:
        if isinstance(text, bool):
            raise ValueError(f"expected a whole number, got {text!r}")
        value = int(str(text).strip())
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise ValueError(f"must be {bound}, got {value}")
        return value

    return convert


def _seconds(text: Any) -> float:
    value = float(str(text).strip())
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"must be a non-negative number of seconds, got {text!r}")
    return value


def _port(text: Any) -> int:
    return _integer(0, 65535)(text)


def _token(text: Any) -> str | None:
    if text is None or str(text).strip() == "":
        return None
    return validate_token(str(text).strip())


def _log_level(text: Any) -> str:
    value = str(text).strip().upper()
    if value not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}, got {text!r}")
    return value


def _url(text: Any) -> str:
    value = str(text).strip()
    if not value.startswith(("http://", "https://", "/")):
        raise ValueError(f"must be an http(s) URL or an absolute path, got {text!r}")
    return value


BASE_PATH_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~/")


def parse_base_path(text: Any) -> str:
    """`/maestro/` → `/maestro`; `` and `/` → `` (the root); ValueError for anything that is
    not a plain URL path (`//host`, `..`, quotes, control or non-ASCII characters)."""
    value = str(text).strip().rstrip("/")
    if not value:
        return ""
    if (not value.startswith("/") or "//" in value or not set(value) <= BASE_PATH_CHARS
            or any(part in (".", "..") for part in value.split("/"))):
        raise ValueError(f"must be a URL path such as /maestro (letters, digits, - . _ ~), "
                         f"got {text!r}")
    return value


def _public_url(text: Any) -> str | None:
    value = str(text).strip().rstrip("/")
    if not value:
        return None
    if not value.startswith(("http://", "https://")) or any(c in value for c in "?# "):
        raise ValueError(f"must be an http(s) URL such as https://example.com/maestro, "
                         f"got {text!r}")
    return value


def _origins(text: Any) -> list[str]:
    if isinstance(text, list):
        return [str(item) for item in text]
    return [part.strip() for part in str(text).split(",") if part.strip()] or ["*"]


def _push_contact(text: Any) -> str:
    value = str(text).strip()
    if not value.startswith(("mailto:", "https://")) or len(value) < 10:
        raise ValueError(f"must be a mailto: address or an https:// URL, got {text!r}")
    return value


def _names(text: Any) -> list[str]:
    """A comma-separated list (or a TOML list), blanks dropped; may be empty."""
    items = text if isinstance(text, list) else str(text).split(",")
    return [str(item).strip() for item in items if str(item).strip()]


def _path(text: Any) -> str:
    return str(Path(str(text)).expanduser())


def validate_token(text: str) -> str:
    """Return the canonical form of a UUID v4 token or raise ValueError."""
    try:
        parsed = uuid.UUID(text)
    except ValueError:
        raise ValueError(f"must be a UUID v4, got {text!r}") from None
    if parsed.version != 4 or str(parsed) != text.lower():
        raise ValueError(f"must be a UUID v4 such as {uuid.uuid4()}, got {text!r}")
    return str(parsed)


@dataclasses.dataclass(frozen=True)
class Option:
    """One setting: its name, converter, default and command-line help."""

    name: str
    convert: Callable[[Any], Any]
    default: Any
    help: str
    flag_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


OPTIONS: tuple[Option, ...] = (
    Option("host", str, "0.0.0.0", "address to bind"),
    Option("port", _port, 0, "port (0 = random free port; --port alone = 8080)",
           {"nargs": "?", "const": CUSTOM_PORT_DEFAULT}),
    Option("token", _token, None, "security token (a UUID v4); default: a fresh one per start; "
           "visible in ps: prefer MAESTRO_TOKEN or --token-file"),
    Option("token_file", _path, None, "file whose first line is the token"),
    Option("viewer_token", _token, None, "view-only token (a UUID v4): watches, cannot act; "
           "prefer MAESTRO_VIEWER_TOKEN"),
    Option("enable_viewer", _boolean, False, "generate a view-only token (kept with "
           "--persistent-token)", {"action": "store_const", "const": True}),
    Option("persistent_token", _boolean, False, "keep one token across restarts",
           {"action": "store_const", "const": True}),
    Option("rotate_token", _boolean, False, "replace the persistent token",
           {"action": "store_const", "const": True}),
    Option("data_dir", _path, platformdirs.user_data_dir(APP_NAME), "folder for the database"),
    Option("config", _path, None, "TOML config file (default: <data-dir>/config.toml)"),
    Option("redirect_url", _url, "https://runmaestro.ai", "where requests without the token go"),
    Option("tls_cert", _path, None, "serve HTTPS (and WSS) with this PEM certificate (chain)"),
    Option("tls_key", _path, None, "the PEM private key of --tls-cert"),
    Option("tls", str, None, "'self-signed': serve HTTPS with a local CA kept in "
           "<data-dir>/tls (trust its ca.crt on your phone once)"),
    Option("hsts", _boolean, False, "send Strict-Transport-Security over HTTPS",
           {"action": "store_const", "const": True}),
    Option("tunnel", str, None, "'tailscale' (tailscale serve) or 'cloudflare' (a cloudflared "
           "quick tunnel): an https URL that reaches this server from anywhere"),
    Option("tunnel_wait_s", _seconds, 30.0, "seconds to wait for the tunnel's public URL"),
    Option("rate_limit_get", _integer(1), 100, "GET requests per window and client IP"),
    Option("rate_limit_post", _integer(1), 30, "state-changing requests per window and client IP"),
    Option("rate_limit_window_ms", _integer(1), 60_000, "rate-limit window in ms (whole seconds)"),
    Option("no_rate_limit", _boolean, False, "disable rate limiting",
           {"action": "store_const", "const": True}),
    Option("trusted_proxies", _integer(0, 10), 0, "reverse proxies in front whose "
           "X-Forwarded-For, -Proto, -Host and -Prefix to trust (see docs/deploy.md)"),
    Option("base_path", parse_base_path, "", "serve under this URL path, e.g. /maestro, for a "
           "reverse proxy that passes the path on unchanged (default: the root)"),
    Option("public_url", _public_url, None, "the URL a reverse proxy serves this server at, "
           "e.g. https://example.com/maestro: printed in the banner, its host name served"),
    Option("cors_origins", _origins, ["*"], "comma-separated origins allowed by CORS"),
    Option("allowed_hosts", _names, None, "comma-separated host names served besides IP "
           "literals, localhost and this machine's names ('*': any)"),
    Option("allowed_origins", _names, None, "comma-separated origins whose pages may open the "
           "WebSocket besides the server's own ('*': any)"),
    Option("auth_fail_limit", _integer(1), 10,
           "wrong-token requests per address and window before a lockout"),
    Option("auth_fail_window_s", _integer(1), 60, "window for --auth-fail-limit, in seconds"),
    Option("auth_lockout_s", _integer(1), 300,
           "seconds an address that used up --auth-fail-limit gets 429"),
    Option("no_cgroups", _boolean, False, "track sessions' processes by process group and "
           "environment mark only, not in cgroups (used where they can be created)",
           {"action": "store_const", "const": True}),
    Option("shell", str, "/bin/bash", "bash-compatible shell for terminal sessions"),
    Option("log_level", _log_level, "INFO", "logging level"),
    Option("max_body_bytes", _integer(1), 1024 * 1024, "largest request body (413 above)"),
    Option("max_command_chars", _integer(1), 100_000, "longest command text (413 above)"),
    Option("max_ws_message_bytes", _integer(1), 1024 * 1024, "largest WebSocket message"),
    Option("log_cap", _integer(10), 20_000, "log entries kept per session"),
    Option("detail_log_limit", _integer(1, 20_000), 100,
           "newest log entries included in a session's detail"),
    Option("detail_log_chars", _integer(1), 256 * 1024,
           "characters of log text a session's detail holds at most per log (the newest "
           "entry always)"),
    Option("interrupt_grace_s", _seconds, 2.0, "seconds between SIGINT, SIGTERM and SIGKILL"),
    Option("max_queued_prompts", _integer(0), 20,
           "prompts that may wait per AI tab while a turn runs (409 beyond)"),
    Option("max_clients", _integer(1), 100, "WebSocket clients at once"),
    Option("ws_ping_interval_s", _seconds, 25.0,
           "seconds between the server's WebSocket pings (0 = no pings)"),
    Option("client_queue_size", _integer(10), 2000, "events queued per WebSocket client"),
    Option("ws_pending_messages", _integer(1), 200,
           "messages of one WebSocket client waiting for their answer (closed with 1008 beyond)"),
    Option("replay_buffer_size", _integer(10), 10_000, "events kept for WebSocket resume"),
    Option("replay_buffer_bytes", _integer(65536), 16 * 1024 * 1024,
           "bytes of events (as JSON) kept for WebSocket resume"),
    Option("max_sessions", _integer(1), 100, "sessions at once (409 beyond)"),
    Option("request_timeout_s", _seconds, 10.0,
           "seconds a client has to send a whole request head (slowloris guard)"),
    Option("max_connections_per_address", _integer(1), 64,
           "connections one address may have still sending request heads (429 beyond)"),
    Option("max_tabs", _integer(1), 50, "AI tabs per session (409 beyond)"),
    Option("history_cap", _integer(10), 10_000, "history entries kept, oldest dropped first"),
    Option("key_rate", _integer(1), 50, "keystrokes, resizes and interrupts per second and "
           "client IP (bursts of twice that), outside the POST quota"),
    Option("shell_ready_timeout_s", _seconds, 3.0, "seconds a send waits for a starting "
           "shell before it is queued with a note that the start-up files are slow"),
    Option("tmux_socket", _path, None, "socket of the tmux server whose sessions terminal "
           "sessions attach to (as tmux -S); default: your tmux's default server"),
    Option("approval_timeout_s", _seconds, None, "seconds an agent's approval request may "
           "stay unanswered before it is denied (default: no limit; 0: no limit)"),
    Option("max_open_approvals", _integer(1), 20, "approvals one tab may hold open at once; "
           "an agent's further requests are denied at once with a message"),
    Option("push_max_subscriptions", _integer(1), 50,
           "Web Push subscriptions kept at once (409 beyond)"),
    Option("push_queue_size", _integer(1), 200,
           "notifications waiting to be pushed (newer ones are dropped beyond)"),
    Option("push_timeout_s", _seconds, 10.0, "seconds a push service has to answer a push"),
    Option("push_contact", _push_contact, "https://runmaestro.ai",
           "the VAPID 'sub' claim: a mailto: or https: contact for the push services (Apple's "
           "refuses one whose host does not resolve, such as @localhost)"),
    Option("browse_outside_home", _boolean, False, "let GET dirs (the folder picker) list "
           "folders outside the home folder of the user running the server",
           {"action": "store_const", "const": True}),
    Option("dirs_max", _integer(1), 500, "sub-folders GET dirs lists at most (the rest is "
           "left out, marked truncated)"),
    Option("push_allow_loopback_http", _boolean, False,
           "accept http:// push endpoints on 127.0.0.1, ::1 and localhost (a local push "
           "service stand-in, for tests; real ones are https)",
           {"action": "store_const", "const": True}),
)
_BY_NAME = {option.name: option for option in OPTIONS}

# Keys a config file may hold besides the flags: lists and tables that have no flag.
FILE_ONLY_KEYS = ("commands", "agents")


@dataclasses.dataclass
class Settings:
    """Effective settings; build with load_settings() or Settings.defaults(**overrides)."""

    host: str
    port: int
    token: str | None
    token_file: str | None
    viewer_token: str | None
    enable_viewer: bool
    persistent_token: bool
    rotate_token: bool
    data_dir: str
    config: str | None
    redirect_url: str
    tls_cert: str | None
    tls_key: str | None
    tls: str | None
    hsts: bool
    tunnel: str | None
    tunnel_wait_s: float
    rate_limit_get: int
    rate_limit_post: int
    rate_limit_window_ms: int
    no_rate_limit: bool
    trusted_proxies: int
    base_path: str
    public_url: str | None
    cors_origins: list[str]
    allowed_hosts: list[str] | None
    allowed_origins: list[str] | None
    auth_fail_limit: int
    auth_fail_window_s: int
    auth_lockout_s: int
    no_cgroups: bool
    shell: str
    log_level: str
    max_body_bytes: int
    max_command_chars: int
    max_ws_message_bytes: int
    log_cap: int
    detail_log_limit: int
    detail_log_chars: int
    interrupt_grace_s: float
    max_queued_prompts: int
    max_clients: int
    ws_ping_interval_s: float
    client_queue_size: int
    ws_pending_messages: int
    replay_buffer_size: int
    replay_buffer_bytes: int
    max_sessions: int
    request_timeout_s: float
    max_connections_per_address: int
    max_tabs: int
    history_cap: int
    key_rate: int
    shell_ready_timeout_s: float
    tmux_socket: str | None
    approval_timeout_s: float | None
    max_open_approvals: int
    push_max_subscriptions: int
    push_queue_size: int
    push_timeout_s: float
    push_contact: str
    push_allow_loopback_http: bool
    browse_outside_home: bool
    dirs_max: int
    commands: list[dict[str, str]] = dataclasses.field(default_factory=list)
    # Agent toolTypes: the built-ins, adjusted and extended by the config file's [agents.*].
    agents: dict[str, AgentSpec] = dataclasses.field(default_factory=builtin_agents)

    @classmethod
    def defaults(cls, **overrides: Any) -> Settings:
        values = {option.name: option.default for option in OPTIONS}
        values.update(overrides)
        return cls(**values)

    @property
    def database_path(self) -> str:
        return os.path.join(self.data_dir, "maestro.db")

    @property
    def rate_limit_window_s(self) -> int:
        """flask-limiter counts whole seconds: the window is rounded up."""
        return max(1, math.ceil(self.rate_limit_window_ms / 1000))


def build_parser() -> argparse.ArgumentParser:
    """The flags shared by run.py and wsgi.py."""
    parser = argparse.ArgumentParser(
        description="Maestro Web: steer your terminal and agent sessions from a phone.",
        argument_default=argparse.SUPPRESS,
    )
    for option in OPTIONS:
        kwargs = dict(option.flag_kwargs)
        text = option.help
        if "action" not in kwargs:
            kwargs.setdefault("metavar", option.name.split("_")[-1].upper())
            default = option.default
            if isinstance(default, list | tuple):
                default = ",".join(default) or None
            if default not in (None, ""):
                text += f" (default: {default})"
        parser.add_argument(option.flag, dest=option.name, help=text, **kwargs)
    return parser


def _convert(option: Option, raw: Any, origin: str) -> Any:
    try:
        return option.convert(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{option.flag} ({origin}): {exc}") from None


def _read_config_file(path: str, explicit: bool) -> dict[str, Any]:
    if not explicit and not os.path.exists(path):
        return {}
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    values: dict[str, Any] = {}
    for key, raw in data.items():
        name = key.replace("-", "_")
        if name not in _BY_NAME and name not in FILE_ONLY_KEYS:
            raise ConfigError(f"config file {path}: unknown setting {key!r}")
        values[name] = raw
    return values


def _commands(raw: Any, path: str) -> list[dict[str, str]]:
    if not isinstance(raw, list) or not all(
        isinstance(item, dict) and isinstance(item.get("command"), str) for item in raw
    ):
        raise ConfigError(f"config file {path}: 'commands' must be a list of tables with 'command'")
    return [
        {"command": item["command"], "description": str(item.get("description", ""))}
        for item in raw
    ]


def load_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Resolve every setting from flags, environment, config file and defaults.

    :raise ConfigError: a value is invalid or the config file cannot be read.
    """
    environ = os.environ if environ is None else environ
    flags = vars(build_parser().parse_args(list(argv or [])))
    env = {
        option.name: environ[ENV_PREFIX + option.name.upper()]
        for option in OPTIONS
        if ENV_PREFIX + option.name.upper() in environ
    }

    def early(name: str) -> Any:
        option = _BY_NAME[name]
        if name in flags:
            return _convert(option, flags[name], "command line")
        if name in env:
            return _convert(option, env[name], f"environment {ENV_PREFIX}{name.upper()}")
        return option.default

    config_path = early("config")
    explicit = config_path is not None
    config_path = config_path or os.path.join(early("data_dir"), "config.toml")
    from_file = _read_config_file(config_path, explicit)

    values: dict[str, Any] = {}
    for option in OPTIONS:
        if option.name in flags:
            values[option.name] = _convert(option, flags[option.name], "command line")
        elif option.name in env:
            origin = f"environment {ENV_PREFIX}{option.name.upper()}"
            values[option.name] = _convert(option, env[option.name], origin)
        elif option.name in from_file:
            values[option.name] = _convert(option, from_file[option.name], config_path)
        else:
            values[option.name] = option.default
    values["config"] = config_path
    if "commands" in from_file:
        values["commands"] = _commands(from_file["commands"], config_path)
    if "agents" in from_file:
        try:
            values["agents"] = agents_from_config(from_file["agents"])
        except ValueError as exc:
            raise ConfigError(f"config file {config_path}: {exc}") from None
    if values["token_file"]:
        if values["token"]:
            raise ConfigError("a token and a token file cannot both be given "
                              "(--token/MAESTRO_TOKEN and --token-file/MAESTRO_TOKEN_FILE)")
        values["token"] = read_token_file(values["token_file"])
    if values["rotate_token"] and values["token"]:
        raise ConfigError("--rotate-token cannot be used with --token or --token-file")
    return Settings(**values)


def read_token_file(path: str) -> str:
    """The token on the first line of `path` (surrounding blanks stripped).

    The file's content is never quoted in the error: it may be a secret with a typo.

    :raise ConfigError: the file cannot be read or its first line is not a UUID v4.
    """
    try:
        # Not a FIFO or a device (which could block or never end); a token line is short.
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise ConfigError(f"token file {path} is not a regular file")
        with open(path, "rb") as handle:
            head = handle.read(TOKEN_FILE_READ_MAX)
        first_line = head.split(b"\n", 1)[0].decode("utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read token file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"token file {path} is not UTF-8 text") from None
    if not first_line:
        raise ConfigError(f"token file {path} has no token on its first line")
    try:
        return validate_token(first_line)
    except ValueError:
        raise ConfigError(f"token file {path}: the first line must be a UUID v4") from None


def given_on_command_line(argv: Sequence[str], name: str) -> bool:
    """Whether the command line sets setting `name`, in any spelling argparse accepts."""
    return name in vars(build_parser().parse_args(list(argv)))
