"""Apache Airflow provider for AI avatar, video-generation and live-stream services."""

from __future__ import annotations

__version__ = "0.1.0"
