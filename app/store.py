"""SQLite persistence: sessions, tabs, log entries, history and settings in one WAL file.

One connection serves every thread, guarded by one lock: writes are short and SQLite
serialises them anyway, and a single connection keeps "committed" unambiguous for the
persist-then-publish rule of the event bus.

The database holds every command, answer and history entry, so the data dir is private to
its owner: folders 0700, files 0600, whatever the umask.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import stat
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

SCHEMA = Path(__file__).with_name("schema.sql")
SHELL_TAB = ""  # tab_id stored for shell (terminal) log entries
DECIDED_APPROVALS_KEPT = 200  # per session: enough to answer a late second decision with 409
# Every log entry has these; any other fields (a tool call's input and result) are its detail.
LOG_FIELDS = ("source", "text", "timestamp")
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
# SQLite's companions of a WAL database; it gives them the database file's mode when it
# creates them, but ones left by an older version keep theirs.
SQLITE_COMPANIONS = ("-wal", "-shm")

logger = logging.getLogger(__name__)


def make_private_dir(path: str) -> None:
    """Create `path` (and missing parents) as 0700; tighten it if others may read it.

    A folder we do not own is left as it is, with a warning.
    """
    os.makedirs(path, mode=PRIVATE_DIR_MODE, exist_ok=True)
    info = os.stat(path)
    mode = stat.S_IMODE(info.st_mode)
    if not mode & 0o077:
        return
    if info.st_uid != os.getuid():
        logger.warning("%s is open to other local users (mode %04o) and is not ours to "
                       "tighten", path, mode)
        return
    os.chmod(path, PRIVATE_DIR_MODE)
    logger.warning("%s was open to other local users (mode %04o); tightened to %04o",
                   path, mode, PRIVATE_DIR_MODE)


def open_private_file(path: str, flags: int = os.O_RDWR) -> int:
    """Open (creating if needed) a file with mode exactly 0600; return its descriptor.

    os.open's mode only applies on creation and goes through the umask; fchmod makes it exact
    and also tightens a file an older version created 0644.
    """
    fd = os.open(path, flags | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE_MODE)
    if stat.S_IMODE(os.fstat(fd).st_mode) != PRIVATE_FILE_MODE:
        os.fchmod(fd, PRIVATE_FILE_MODE)
    return fd


def write_private_file(path: str, text: str) -> None:
    """Replace `path` atomically with `text`, mode 0600 from the first byte."""
    fd, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def _tighten_file(path: str) -> None:
    try:
        if stat.S_IMODE(os.stat(path).st_mode) != PRIVATE_FILE_MODE:
            os.chmod(path, PRIVATE_FILE_MODE)
    except FileNotFoundError:
        pass


def _detail_json(entry: dict[str, Any]) -> str | None:
    detail = {key: value for key, value in entry.items() if key not in LOG_FIELDS}
    detail.pop("id", None)
    return json.dumps(detail) if detail else None


def _log_entry(row: sqlite3.Row) -> dict[str, Any]:
    """A stored row as the API's log entry: its detail fields beside the common ones."""
    entry = {key: row[key] for key in ("id", "timestamp", "source", "text")}
    if row["detail"]:
        entry.update(json.loads(row["detail"]))
    return entry


class Store:
    """Plain methods over one SQLite database file."""

    def __init__(self, path: str, log_cap: int = 20_000, history_cap: int = 10_000) -> None:
        make_private_dir(os.path.dirname(os.path.abspath(path)))
        os.close(open_private_file(path))  # SQLite would create it with the umask's mode
        self.path = path
        self.log_cap = log_cap
        self.history_cap = history_cap
        # Guards the connection: sqlite3 objects must not be used by two threads at once.
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA.read_text())
        self._add_log_detail_column()
        for suffix in SQLITE_COMPANIONS:
            _tighten_file(path + suffix)
        # Entries per (session, tab), so the cap is enforced without counting rows each time.
        self._log_counts: dict[tuple[str, str], int] = {}
        self._history_count = self._db.execute("SELECT COUNT(*) FROM history").fetchone()[0]

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN ... COMMIT, or ROLLBACK if the body fails; hold self._lock around it."""
        self._db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _add_log_detail_column(self) -> None:
        """Databases made before log entries had a detail get its column (NULL for old rows)."""
        columns = {row["name"] for row in self._db.execute("PRAGMA table_info(log_entries)")}
        if "detail" not in columns:
            self._db.execute("ALTER TABLE log_entries ADD COLUMN detail TEXT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- settings ---------------------------------------------------------------------------

    def get_setting(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return row["value"] if row else None

    def set_setting(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def erase_setting(self, key: str) -> None:
        """Delete a setting so its value is gone from the files' bytes, not just unlinked.

        A DELETE leaves the old bytes in free pages and WAL frames; VACUUM rewrites the
        database and the TRUNCATE checkpoint empties the WAL. Slow on a big database: meant
        for a secret, once.
        """
        with self._lock:
            self._db.execute("DELETE FROM settings WHERE key = ?", (key,))
            self._db.execute("VACUUM")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- sessions ---------------------------------------------------------------------------

    def save_session(self, doc: dict[str, Any]) -> None:
        """Insert or replace a session document (tabs included)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO sessions (id, doc, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET doc = excluded.doc",
                (doc["id"], json.dumps(doc), doc["createdAt"]),
            )

    def load_sessions(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT doc FROM sessions ORDER BY created_at, id").fetchall()
        return [json.loads(row["doc"]) for row in rows]

    def delete_session(self, session_id: str) -> None:
        """Remove a session with its logs and its history."""
        with self._lock:
            with self._transaction():
                self._db.execute("DELETE FROM log_entries WHERE session_id = ?", (session_id,))
                self._db.execute("DELETE FROM approvals WHERE session_id = ?", (session_id,))
                history = self._db.execute(
                    "DELETE FROM history WHERE session_id = ?", (session_id,)).rowcount
                self._db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
            self._history_count -= history
            for key in [key for key in self._log_counts if key[0] == session_id]:
                del self._log_counts[key]

    # -- log entries ------------------------------------------------------------------------

    def append_logs(
        self, session_id: str, tab_id: str | None, entries: Iterable[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Commit entries (`source`, `text`, `timestamp`, and any detail fields) in one
        transaction; return them with ids.

        Oldest entries beyond the cap are dropped in the same transaction.
        """
        tab = tab_id or SHELL_TAB
        stored = []
        with self._lock:
            self._db.execute("BEGIN")
            try:
                for entry in entries:
                    cursor = self._db.execute(
                        "INSERT INTO log_entries (session_id, tab_id, source, text, timestamp, "
                        "detail) VALUES (?, ?, ?, ?, ?, ?)",
                        (session_id, tab, entry["source"], entry["text"], entry["timestamp"],
                         _detail_json(entry)),
                    )
                    stored.append({**entry, "id": cursor.lastrowid})
                count = self._log_count(session_id, tab) + len(stored)
                if count > self.log_cap:
                    self._db.execute(
                        "DELETE FROM log_entries WHERE session_id = ? AND tab_id = ? AND id <= "
                        "(SELECT id FROM log_entries WHERE session_id = ? AND tab_id = ? "
                        "ORDER BY id DESC LIMIT 1 OFFSET ?)",
                        (session_id, tab, session_id, tab, self.log_cap),
                    )
                    count = self.log_cap
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._log_counts[(session_id, tab)] = count
        return stored

    def _log_count(self, session_id: str, tab: str) -> int:
        key = (session_id, tab)
        if key not in self._log_counts:
            row = self._db.execute(
                "SELECT COUNT(*) AS n FROM log_entries WHERE session_id = ? AND tab_id = ?", key
            ).fetchone()
            self._log_counts[key] = row["n"]
        return self._log_counts[key]

    def update_log(self, entry_id: int, entry: dict[str, Any]) -> bool:
        """Replace an entry's text and detail (an answer still streaming, a tool call that
        finished); False when the entry is gone (its tab closed, or dropped by the cap)."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE log_entries SET text = ?, detail = ? WHERE id = ?",
                (entry["text"], _detail_json(entry), entry_id))
        return cursor.rowcount > 0

    def delete_logs(self, session_id: str, tab_id: str) -> None:
        """Drop one AI tab's log (when the tab is closed)."""
        with self._lock:
            self._db.execute("DELETE FROM log_entries WHERE session_id = ? AND tab_id = ?",
                             (session_id, tab_id))
            self._log_counts.pop((session_id, tab_id), None)

    def page_logs(
        self,
        session_id: str,
        tab_id: str | None,
        *,
        after: int | None = None,
        before: int | None = None,
        limit: int = 100,
    ) -> tuple[list[dict[str, Any]], bool]:
        """A page of entries in ascending id order, and whether more lie beyond it.

        `after` pages forward from an id; otherwise the page ends just before `before`
        (or at the newest entry) and "more" means older entries exist.
        """
        tab = tab_id or SHELL_TAB
        columns = "id, timestamp, source, text, detail"
        with self._lock:
            if after is not None:
                rows = self._db.execute(
                    f"SELECT {columns} FROM log_entries WHERE session_id = ? AND tab_id = ? "
                    "AND id > ? ORDER BY id LIMIT ?",
                    (session_id, tab, after, limit + 1),
                ).fetchall()
                more = len(rows) > limit
                rows = rows[:limit]
            else:
                bound = before if before is not None else -1
                rows = self._db.execute(
                    f"SELECT {columns} FROM log_entries WHERE session_id = ? AND tab_id = ? "
                    "AND (? < 0 OR id < ?) ORDER BY id DESC LIMIT ?",
                    (session_id, tab, bound, bound, limit + 1),
                ).fetchall()
                more = len(rows) > limit
                rows = list(reversed(rows[:limit]))
        return [_log_entry(row) for row in rows], more

    # -- history ----------------------------------------------------------------------------

    def add_history(self, entry: dict[str, Any]) -> None:
        """Record a history entry; beyond `history_cap` entries the oldest are dropped."""
        with self._lock, self._transaction():
            self._db.execute(
                "INSERT INTO history (id, session_id, project_path, timestamp, doc) "
                "VALUES (?, ?, ?, ?, ?)",
                (entry["id"], entry["sessionId"], entry["projectPath"], entry["timestamp"],
                 json.dumps(entry)),
            )
            count = self._history_count + 1
            if count > self.history_cap:
                count -= self._db.execute(
                    "DELETE FROM history WHERE rowid IN "
                    "(SELECT rowid FROM history ORDER BY timestamp, rowid LIMIT ?)",
                    (count - self.history_cap,)).rowcount
        self._history_count = count

    def list_history(
        self, session_id: str | None = None, project_path: str | None = None, limit: int = 500
    ) -> list[dict[str, Any]]:
        """History entries, newest first, optionally for one session or folder."""
        with self._lock:
            rows = self._db.execute(
                "SELECT doc FROM history WHERE (? IS NULL OR session_id = ?) "
                "AND (? IS NULL OR project_path = ?) ORDER BY timestamp DESC, rowid DESC LIMIT ?",
                (session_id, session_id, project_path, project_path, limit),
            ).fetchall()
        return [json.loads(row["doc"]) for row in rows]

    # -- approvals --------------------------------------------------------------------------

    def save_approval(self, doc: dict[str, Any], open_: bool) -> None:
        """Insert or replace an approval (its API form), open or decided; of a session's
        decided approvals only the newest DECIDED_APPROVALS_KEPT are kept."""
        with self._lock, self._transaction():
            self._db.execute(
                "INSERT INTO approvals (id, session_id, created_at, open, doc) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET open = excluded.open, "
                "doc = excluded.doc",
                (doc["id"], doc["sessionId"], doc["createdAt"], int(open_), json.dumps(doc)))
            if not open_:
                self._db.execute(
                    "DELETE FROM approvals WHERE session_id = ? AND open = 0 AND id NOT IN "
                    "(SELECT id FROM approvals WHERE session_id = ? AND open = 0 "
                    "ORDER BY created_at DESC, id LIMIT ?)",
                    (doc["sessionId"], doc["sessionId"], DECIDED_APPROVALS_KEPT))

    def approval(self, approval_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT doc FROM approvals WHERE id = ?",
                                   (approval_id,)).fetchone()
        return json.loads(row["doc"]) if row else None

    def open_approvals(self, session_id: str) -> list[dict[str, Any]]:
        """The session's approvals still open, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT doc FROM approvals WHERE session_id = ? AND open = 1 "
                "ORDER BY created_at, id", (session_id,)).fetchall()
        return [json.loads(row["doc"]) for row in rows]

    # -- push subscriptions -----------------------------------------------------------------

    def save_push_subscription(self, doc: dict[str, Any],
                               limit: int) -> tuple[dict[str, Any], bool]:
        """Add a subscription, or update the one with the same endpoint (its keys and
        categories; it keeps its id); return it and whether it is new, or raise
        OverflowError when it is new and `limit` are already kept."""
        with self._lock, self._transaction():
            row = self._db.execute("SELECT id, created_at FROM push_subscriptions "
                                   "WHERE endpoint = ?", (doc["endpoint"],)).fetchone()
            if row is None:
                count = self._db.execute("SELECT COUNT(*) FROM push_subscriptions").fetchone()[0]
                if count >= limit:
                    raise OverflowError(limit)
                self._db.execute(
                    "INSERT INTO push_subscriptions (id, endpoint, p256dh, auth, categories, "
                    "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (doc["id"], doc["endpoint"], doc["p256dh"], doc["auth"],
                     json.dumps(doc["categories"]), doc["createdAt"]))
                return doc, True
            self._db.execute(
                "UPDATE push_subscriptions SET p256dh = ?, auth = ?, categories = ? WHERE id = ?",
                (doc["p256dh"], doc["auth"], json.dumps(doc["categories"]), row["id"]))
        return {**doc, "id": row["id"], "createdAt": row["created_at"]}, False

    def push_subscriptions(self, category: str | None = None) -> list[dict[str, Any]]:
        """Every subscription (oldest first), or those that want `category`."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM push_subscriptions "
                                    "ORDER BY created_at, id").fetchall()
        subscriptions = [{"id": row["id"], "endpoint": row["endpoint"], "p256dh": row["p256dh"],
                          "auth": row["auth"], "categories": json.loads(row["categories"]),
                          "createdAt": row["created_at"]} for row in rows]
        return [item for item in subscriptions
                if category is None or category in item["categories"]]

    def delete_push_subscription(self, subscription_id: str) -> bool:
        """Forget a subscription; False when there was none with this id."""
        with self._lock:
            cursor = self._db.execute("DELETE FROM push_subscriptions WHERE id = ?",
                                      (subscription_id,))
        return cursor.rowcount > 0

