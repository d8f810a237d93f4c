"""The count of sockets watching each session's raw terminal stream: kept for live sessions
only, so sessions created and deleted by the thousand leave nothing behind."""

from __future__ import annotations

from app.config import Settings
from app.services import Services


def test_deleted_sessions_leave_no_watcher_counts(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    services = Services.start(Settings.defaults(data_dir=str(tmp_path / "data")))
    manager = services.manager
    try:
        deleted = []
        for number in range(200):
            session = manager.create(f"s{number}", str(project), "claude-code")
            manager.watch_pty(session.id, +1)  # two sockets watch it
            manager.watch_pty(session.id, +1)
            assert manager.pty_watched(session)
            manager.delete(session.id)
            manager.watch_pty(session.id, +1)  # one subscribed just before the delete
            deleted.append(session)
        assert not any(manager.pty_watched(session) for session in deleted)
        for session in deleted:  # the sockets go away later
            for _ in range(3):
                manager.watch_pty(session.id, -1)
        assert not any(manager.pty_watched(session) for session in deleted)
        kept = manager.create("kept", str(project), "claude-code")
        manager.watch_pty(kept.id, +1)
        manager.watch_pty(kept.id, +1)
        manager.watch_pty(kept.id, -1)
        assert manager.pty_watched(kept)  # one socket still watches
        manager.watch_pty(kept.id, -1)
        assert not manager.pty_watched(kept)
    finally:
        services.shutdown()
