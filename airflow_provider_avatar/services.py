"""The registry of services: key → hook class, imported lazily so DAG parsing stays cheap."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from airflow_provider_avatar.hooks.base import AvatarBaseHook


class ServiceInfo(NamedTuple):
    hook_path: str
    default_conn_id: str


SCENEXT_CONN_ID = "scenext_default"
ZEGO_CONN_ID = "zego_default"

SERVICES: dict[str, ServiceInfo] = {
    "scenext": ServiceInfo("airflow_provider_avatar.hooks.scenext.ScenextHook", SCENEXT_CONN_ID),
    "zego": ServiceInfo("airflow_provider_avatar.hooks.zego.ZegoDigitalHumanHook", ZEGO_CONN_ID),
}


def service_info(service: str) -> ServiceInfo:
    try:
        return SERVICES[service]
    except KeyError:
        raise ValueError(f"unknown service {service!r}; expected one of: {', '.join(sorted(SERVICES))}") from None


def hook_class(service: str) -> type[AvatarBaseHook]:
    module, _, name = service_info(service).hook_path.rpartition(".")
    cls: type[AvatarBaseHook] = getattr(importlib.import_module(module), name)
    return cls


def make_hook(service: str, conn_id: str | None = None) -> AvatarBaseHook:
    return hook_class(service)(conn_id or service_info(service).default_conn_id)
