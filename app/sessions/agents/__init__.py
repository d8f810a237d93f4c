"""Coding agents in AI mode: the registry of CLIs (registry), their output parsers (parsers),
one agent run (process) and the turns, queues and interrupts of every tab (conductor)."""
