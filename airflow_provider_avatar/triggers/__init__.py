"""Triggers run in the triggerer: they only read remote state."""
