-- Maestro Web database. Sessions are JSON documents (tabs included): they are small and
-- always read whole. Log entries and history are rows: they are many and read in pages.
CREATE TABLE IF NOT EXISTS settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS sessions (
    id         TEXT PRIMARY KEY,
    doc        TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS log_entries (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    tab_id     TEXT NOT NULL,          -- '' for the shell's log, else the AI tab's id
    source     TEXT NOT NULL,
    text       TEXT NOT NULL,
    timestamp  INTEGER NOT NULL,
    detail     TEXT                -- JSON of the entry's other fields (a tool call's), or NULL
);
CREATE INDEX IF NOT EXISTS log_entries_by_session ON log_entries (session_id, tab_id, id);

CREATE TABLE IF NOT EXISTS history (
    id           TEXT PRIMARY KEY,
    session_id   TEXT NOT NULL,
    project_path TEXT NOT NULL,
    timestamp    INTEGER NOT NULL,
    doc          TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS history_by_time ON history (timestamp);

-- What agents asked the user (approvals): open until decided once; kept (decided) so that a
-- second decision gets 409, and deleted with their session.
CREATE TABLE IF NOT EXISTS approvals (
    id         TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    open       INTEGER NOT NULL,       -- 1 until decided
    doc        TEXT NOT NULL           -- the approval as the API shows it (with its decision)
);
CREATE INDEX IF NOT EXISTS approvals_by_session ON approvals (session_id, open, created_at);

-- Web Push subscriptions: one per browser (its endpoint), with the categories it wants.
CREATE TABLE IF NOT EXISTS push_subscriptions (
    id         TEXT PRIMARY KEY,
    endpoint   TEXT NOT NULL UNIQUE,
    p256dh     TEXT NOT NULL,          -- the browser's public key (base64url)
    auth       TEXT NOT NULL,          -- the browser's auth secret (base64url)
    categories TEXT NOT NULL,          -- JSON list: needs_input, finished, failed
    created_at INTEGER NOT NULL
);
