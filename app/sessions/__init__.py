"""Terminal sessions: shells in pseudo-terminals and their lifecycle."""
