"""Operators that create, drive, stop and download remote avatar tasks."""
