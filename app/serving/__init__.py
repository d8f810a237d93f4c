"""Production serving helpers (waitress with WebSocket support)."""
