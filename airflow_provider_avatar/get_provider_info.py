"""Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``).

Everything per service is derived from the registry (:mod:`airflow_provider_avatar.services`).
A malformed dict breaks ``import airflow`` for the whole environment, so a test validates it
against Airflow's own ``provider_info.schema.json``.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_avatar.connection_form import connection_fields
from airflow_provider_avatar.services import PACKAGE, SERVICES, Service

#: The integration of the generic modules (download operator, base sensor, trigger).
GENERIC = "Avatar tasks"


def _connection_type(service: Service) -> dict[str, Any]:
    form = service.form
    return {
        "connection-type": service.key,
        "hook-class-name": service.hook_path,
        "hook-name": service.name,
        "ui-field-behaviour": {
            "hidden-fields": list(form.hidden),
            "relabeling": dict(form.relabel),
            "placeholders": {"host": service.default_base_url or "", **form.placeholders},
        },
        "conn-fields": {**connection_fields(service.default_max_qps), **form.extra_fields},
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
