"""Benchmarks of the provider against the alternatives a user would pick (``make bench``)."""
