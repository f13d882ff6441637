"""Deferrable sensors that wait for a remote task to reach a state."""
