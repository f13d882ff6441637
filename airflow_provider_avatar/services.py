"""The registry of services: one row per service, the single source of everything derived from it.

Provider info (integrations, module lists, connection forms), the hooks' Airflow attributes, the
default connection ids, the simulator's service list and the import-cost checks all read
:data:`SERVICES`. Adding a service means adding its own modules (named by its key, see
``docs/architecture.md``, "How to add a service") and one row here.

Pure data: importing this module imports nothing else, so DAG parsing and provider discovery
stay cheap; hook and simulator classes are named by path and imported only when used.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_avatar.hooks.base import AvatarBaseHook

PACKAGE = "airflow_provider_avatar"


@dataclass(frozen=True)
class ConnectionForm:
    """How a service's connection maps onto Airflow's fields, for the UI and for error messages.

    ``relabel`` renames standard fields (``host``, ``login``, ``password``); ``placeholders``
    fills them (the host's is the service's default base URL unless given); ``hidden`` hides the
    unused ones; ``extra_fields`` adds service-specific extra
    fields (declared like Airflow's ``conn-fields``) to the common ones.
    """

    relabel: Mapping[str, str]
    placeholders: Mapping[str, str]
    hidden: tuple[str, ...] = ("login", "port", "schema")
    extra_fields: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def login_required(self) -> bool:
        return "login" not in self.hidden

    @property
    def secret_label(self) -> str:
        return self.relabel.get("password", "password")


@dataclass(frozen=True)
class Service:
    """One service. Its modules follow the key: ``hooks/<key>.py``, ``sensors/<key>.py``,
    ``operators/<key>.py``, ``protocols/<key>.py``, ``testing/sim_<key>.py``."""

    key: str
    #: Integration and connection-type display name.
    name: str
    doc_url: str
    #: Class names in ``hooks/<key>.py`` and ``testing/sim_<key>.py``.
    hook: str
    simulator: str
    form: ConnectionForm
    #: API base URL used when the connection's host field is empty; ``None``: there is no public
    #: host (e.g. a gateway each user runs or buys from), so the connection must name one.
    default_base_url: str | None
    #: The service's documented request rate (requests/s), or ``None`` when none is published.
    default_max_qps: float | None = None
    #: Module kinds this service has (every service has a hook, a sensor and a simulator).
    kinds: tuple[str, ...] = ("hooks", "sensors", "operators")

    @property
    def default_conn_id(self) -> str:
        return f"{self.key}_default"

    @property
    def conn_id_param(self) -> str:
        """The parameter and attribute name of the connection id on hooks, sensors and operators."""
        return f"{self.key}_conn_id"

    def module(self, kind: str) -> str:
        return f"{PACKAGE}.{kind}.{self.key}"

    @property
    def hook_path(self) -> str:
        return f"{self.module('hooks')}.{self.hook}"

    @property
    def simulator_path(self) -> str:
        return f"{PACKAGE}.testing.sim_{self.key}.{self.simulator}"


_ROWS = (
    Service(
        key="scenext",
        name="Scenext",
        doc_url="https://docs.scenext.cn/en/api-reference/generate-video",
        hook="ScenextHook",
        simulator="ScenextSim",
        default_base_url="https://api.scenext.cn/api",
        form=ConnectionForm(
            relabel={"host": "API base URL", "password": "API Key"},
            placeholders={"password": "your Scenext API key"},
        ),
    ),
    Service(
        key="zego",
        name="ZEGOCLOUD Digital Human",
        doc_url="https://www.zegocloud.com/docs/aigc-digital-human-server/streaming-apis/apis-overview",
        hook="ZegoDigitalHumanHook",
        simulator="ZegoSim",
        # ZEGO gives an overseas host on request; this is the mainland production host.
        default_base_url="https://aigc-digitalhuman-api.zegotech.cn",
        default_max_qps=10.0,
        form=ConnectionForm(
            relabel={"host": "API base URL", "login": "AppId", "password": "ServerSecret"},
            placeholders={
                "login": "numeric AppId from the ZEGO console",
                "password": "ServerSecret from the ZEGO console",
            },
            hidden=("port", "schema"),
        ),
    ),
    Service(
        key="trtc",
        name="Tencent Cloud TRTC",
        doc_url="https://www.tencentcloud.com/document/api/647/57835",
        hook="TrtcHook",
        simulator="TrtcSim",
        # The SDK's default host; international accounts may use trtc.intl.tencentcloudapi.com.
        default_base_url="https://trtc.tencentcloudapi.com",
        default_max_qps=20.0,
        form=ConnectionForm(
            relabel={"host": "API endpoint", "login": "SecretId", "password": "SecretKey"},
            placeholders={"login": "SecretId (AKID...) of a CAM API key", "password": "SecretKey of that API key"},
            hidden=("port", "schema"),
            extra_fields={
                "region": {
                    "label": "Region",
                    "description": "Tencent Cloud region of the TRTC application, e.g. ap-singapore (required).",
                    "schema": {"type": "string", "default": ""},
                },
                "sdk_app_id": {
                    "label": "SDKAppID",
                    "description": "The TRTC application's SDKAppID, e.g. 1400000000 (required; TRTC console).",
                    "schema": {"type": "string", "default": "", "pattern": "^[0-9]*$"},
                },
                "sdk_secret_key": {
                    "label": "SDK secret key",
                    "description": "The application's SDK secret key (TRTC console), used to generate the "
                    "robot user's UserSig. Optional when every start passes a UserSig.",
                    # No default: Airflow's form shows any value of a secret-named field as "***" and
                    # would save that; null (unset) is read as absent.
                    "schema": {"type": ["string", "null"], "format": "password"},
                },
                "session_token": {
                    "label": "Session token",
                    "description": "Only for temporary (STS) credentials.",
                    "schema": {"type": ["string", "null"], "format": "password"},
                },
                "language": {
                    "label": "Error message language",
                    "description": "Language of TRTC's error messages.",
                    "schema": {"type": ["string", "null"], "default": "en-US", "enum": ["en-US", "zh-CN"]},
                },
            },
        ),
    ),
    Service(
        key="minimax",
        name="MiniMax Hailuo video",
        doc_url="https://platform.minimax.io/docs/api-reference/video-generation-query",
        hook="MiniMaxVideoHook",
        simulator="MiniMaxSim",
        # The gateway's (api.gpt.ge) host; flavor "direct" defaults to https://api.minimax.io instead.
        default_base_url="https://api.gpt.ge",
        form=ConnectionForm(
            relabel={"host": "API base URL", "password": "API Key"},
            placeholders={"password": "your MiniMax (or gateway) API key"},
            extra_fields={
                "flavor": {
                    "label": "Flavor",
                    "description": "gateway (/task/minimax/v1/..., e.g. api.gpt.ge) or direct (MiniMax's own "
                    "/v1/... API, default host https://api.minimax.io); auto: direct for MiniMax's hosts, "
                    "else gateway.",
                    "schema": {"type": ["string", "null"], "default": "auto", "enum": ["auto", "gateway", "direct"]},
                },
                "group_id": {
                    "label": "GroupId",
                    "description": "Optional MiniMax GroupId, sent as GroupId with direct calls when set.",
                    "schema": {"type": ["string", "null"], "default": ""},
                },
                "action_max_qps": {
                    "label": "Per-action rate limits",
                    "description": 'JSON of requests per second per action, e.g. {"create_video": 0.333} for 20 '
                    "creates per minute (default 5 per minute, MiniMax's free tier).",
                    "schema": {"type": ["string", "null"], "default": ""},
                },
            },
        ),
    ),
    Service(
        key="dreamface",
        name="DreamFace (new-api gateway)",
        doc_url="https://docs.yutoai.net/en/api/api-254218814.html",
        hook="DreamFaceHook",
        simulator="DreamFaceSim",
        # No public host: each user buys from their own new-api gateway.
        default_base_url=None,
        form=ConnectionForm(
            relabel={"host": "Gateway base URL", "password": "API Key"},
            placeholders={"host": "https://your-gateway.example.com", "password": "API key of your new-api gateway"},
            extra_fields={
                "create_path": {
                    "label": "Create path",
                    "description": "Your gateway's submit route for avatar tasks, relative to the base URL "
                    "(DreamFace gateways publish none). Only DreamFaceCreateAvatarOperator uses it; leave it "
                    "empty to wait for tasks started elsewhere.",
                    "schema": {"type": ["string", "null"], "default": ""},
                },
            },
        ),
    ),
)

SERVICES: Mapping[str, Service] = MappingProxyType({row.key: row for row in _ROWS})

# Defaults of the public constructors' ``<service>_conn_id`` parameters.
SCENEXT_CONN_ID = SERVICES["scenext"].default_conn_id
ZEGO_CONN_ID = SERVICES["zego"].default_conn_id
TRTC_CONN_ID = SERVICES["trtc"].default_conn_id
MINIMAX_CONN_ID = SERVICES["minimax"].default_conn_id
DREAMFACE_CONN_ID = SERVICES["dreamface"].default_conn_id


def service_info(service: str) -> Service:
    try:
        return SERVICES[service]
    except KeyError:
        raise ValueError(f"unknown service {service!r}; expected one of: {', '.join(sorted(SERVICES))}") from None


def load(path: str) -> Any:
    """Import ``package.module.Name`` and return ``Name``."""
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def hook_class(service: str) -> type[AvatarBaseHook]:
    cls: type[AvatarBaseHook] = load(service_info(service).hook_path)
    return cls


def make_hook(service: str, conn_id: str | None = None) -> AvatarBaseHook:
    return hook_class(service)(conn_id)  # None: the service's default connection; '' is refused
