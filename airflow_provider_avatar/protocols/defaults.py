"""Per-service defaults the provider info needs, importable without Airflow.

Airflow reads ``get_provider_info`` while it is itself being imported (configuration loading), so that
function must not import the protocol modules, which import Airflow through the exceptions. The
protocols take their class attributes from here, so each value is written once.
"""

from __future__ import annotations

from typing import Final

SCENEXT_BASE_URL: Final = "https://api.scenext.cn/api"
#: Scenext publishes no request rate limit.
SCENEXT_MAX_QPS: Final[float | None] = None

ZEGO_BASE_URL: Final = "https://aigc-digitalhuman-api.zegotech.cn"
#: ZEGO's documented limit per AppId for each digital-human streaming API.
ZEGO_MAX_QPS: Final[float | None] = 10.0
