"""Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``).

Everything per service is derived from the registry (:mod:`airflow_provider_avatar.services`).
A malformed dict breaks ``import airflow`` for the whole environment, so a test validates it
against Airflow's own ``provider_info.schema.json``.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_avatar.services import PACKAGE, SERVICES, Service

#: The integration of the generic modules (download operator, base sensor, trigger).
GENERIC = "Avatar tasks"

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


def _connection_type(service: Service) -> dict[str, Any]:
    form = service.form
    return {
        "connection-type": service.key,
        "hook-class-name": service.hook_path,
        "hook-name": service.name,
        "ui-field-behaviour": {
            "hidden-fields": list(form.hidden),
            "relabeling": dict(form.relabel),
            "placeholders": {"host": service.default_base_url, "extra": '{"max_qps": 5}', **form.placeholders},
        },
        "conn-fields": {**_COMMON_FIELDS, **form.extra_fields},
    }


def _modules(kind: str) -> list[dict[str, Any]]:
    """One entry per service that has ``kind`` modules, plus the generic ones."""
    generic = {"operators": "download", "sensors": "base", "triggers": "task_status"}.get(kind)
    entries = [{"integration-name": GENERIC, "python-modules": [f"{PACKAGE}.{kind}.{generic}"]}] if generic else []
    entries += [
        {"integration-name": s.name, "python-modules": [s.module(kind)]} for s in SERVICES.values() if kind in s.kinds
    ]
    return entries


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
                "integration-name": GENERIC,
                "external-doc-url": "https://pypi.org/project/airflow-provider-avatar/",
                "tags": ["software"],
            },
            *(
                {"integration-name": s.name, "external-doc-url": s.doc_url, "tags": ["service"]}
                for s in SERVICES.values()
            ),
        ],
        "hooks": _modules("hooks"),
        "operators": _modules("operators"),
        "sensors": _modules("sensors"),
        "triggers": _modules("triggers"),
        "connection-types": [_connection_type(s) for s in SERVICES.values()],
    }
