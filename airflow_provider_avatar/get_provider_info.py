"""Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``).

A malformed dict breaks ``import airflow`` for the whole environment, so a test validates it
against Airflow's own ``provider_info.schema.json``.
"""

from __future__ import annotations

from typing import Any

_COMMON_FIELDS: dict[str, Any] = {
    "max_qps": {
        "label": "Max requests per second",
        "description": "Client-side request rate limit shared by every task and trigger of this connection.",
        "schema": {"type": ["number", "null"], "minimum": 0.1},
    },
    "allow_private_hosts": {
        "label": "Allow private download hosts",
        "description": "Allow downloads from private or loopback addresses (local simulator, on-premise storage).",
        "schema": {"type": ["boolean", "null"]},
    },
    "read_timeout": {
        "label": "Read timeout (s)",
        "description": "Seconds to wait for an API answer (default 60).",
        "schema": {"type": ["number", "null"], "minimum": 1},
    },
    "connect_timeout": {
        "label": "Connect timeout (s)",
        "description": "Seconds to wait for a connection to the API (default 10).",
        "schema": {"type": ["number", "null"], "minimum": 1},
    },
    "max_attempts": {
        "label": "Attempts per call",
        "description": "Tries per API call for retryable errors (default 4); a create is never repeated "
        "once it may have arrived.",
        "schema": {"type": ["integer", "null"], "minimum": 1},
    },
    "scheme": {
        "label": "Scheme",
        "description": "http or https, used when the host field holds a bare host name (default https).",
        "schema": {"type": ["string", "null"], "enum": ["http", "https", None]},
    },
}


def _bearer_connection(conn_type: str, hook: str, name: str, base_url: str) -> dict[str, Any]:
    return {
        "connection-type": conn_type,
        "hook-class-name": hook,
        "hook-name": name,
        "ui-field-behaviour": {
            "hidden-fields": ["login", "port", "schema"],
            "relabeling": {"host": "API base URL", "password": "API Key"},
            "placeholders": {
                "host": base_url,
                "password": "your API key",
                "extra": '{"max_qps": 5}',
            },
        },
        "conn-fields": dict(_COMMON_FIELDS),
    }


def _zego_connection() -> dict[str, Any]:
    """AppId in login and ServerSecret in password: every request is signed with both."""
    return {
        "connection-type": "zego",
        "hook-class-name": "airflow_provider_avatar.hooks.zego.ZegoDigitalHumanHook",
        "hook-name": "ZEGOCLOUD Digital Human",
        "ui-field-behaviour": {
            "hidden-fields": ["port", "schema"],
            "relabeling": {"host": "API base URL", "login": "AppId", "password": "ServerSecret"},
            "placeholders": {
                "host": "https://aigc-digitalhuman-api.zegotech.cn",
                "login": "numeric AppId from the ZEGO console",
                "password": "ServerSecret from the ZEGO console",
                "extra": '{"max_qps": 10}',
            },
        },
        "conn-fields": dict(_COMMON_FIELDS),
    }


def get_provider_info() -> dict[str, Any]:
    from airflow_provider_avatar import __version__

    return {
        "package-name": "airflow-provider-avatar",
        "name": "Avatar",
        "description": "Drive AI avatar, video-generation and live-stream services from Airflow: "
        "create remote tasks, wait for them with deferrable sensors, download the videos.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Avatar tasks",
                "external-doc-url": "https://pypi.org/project/airflow-provider-avatar/",
                "tags": ["software"],
            },
            {
                "integration-name": "Scenext",
                "external-doc-url": "https://docs.scenext.cn/en/api-reference/generate-video",
                "tags": ["service"],
            },
            {
                "integration-name": "ZEGOCLOUD Digital Human",
                "external-doc-url": "https://www.zegocloud.com/docs/aigc-digital-human-server/streaming-apis/apis-overview",
                "tags": ["service"],
            },
        ],
        "hooks": [
            {"integration-name": "Scenext", "python-modules": ["airflow_provider_avatar.hooks.scenext"]},
            {"integration-name": "ZEGOCLOUD Digital Human", "python-modules": ["airflow_provider_avatar.hooks.zego"]},
        ],
        "operators": [
            {"integration-name": "Avatar tasks", "python-modules": ["airflow_provider_avatar.operators.download"]},
            {"integration-name": "Scenext", "python-modules": ["airflow_provider_avatar.operators.scenext"]},
            {
                "integration-name": "ZEGOCLOUD Digital Human",
                "python-modules": ["airflow_provider_avatar.operators.zego"],
            },
        ],
        "sensors": [
            {"integration-name": "Avatar tasks", "python-modules": ["airflow_provider_avatar.sensors.base"]},
            {"integration-name": "Scenext", "python-modules": ["airflow_provider_avatar.sensors.scenext"]},
            {"integration-name": "ZEGOCLOUD Digital Human", "python-modules": ["airflow_provider_avatar.sensors.zego"]},
        ],
        "triggers": [
            {"integration-name": "Avatar tasks", "python-modules": ["airflow_provider_avatar.triggers.task_status"]},
        ],
        "connection-types": [
            _bearer_connection(
                "scenext",
                "airflow_provider_avatar.hooks.scenext.ScenextHook",
                "Scenext",
                "https://api.scenext.cn/api",
            ),
            _zego_connection(),
        ],
    }
