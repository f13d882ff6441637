"""Test kit: a local simulator of the five service APIs (``python -m airflow_provider_avatar.testing.simulator``)."""
