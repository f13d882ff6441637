"""DAG files import our sensors and operators on every parse: keep heavy clients out of that."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = (
    "aiohttp",
    "requests",
    "tenacity",
    "tencentcloud",
    "airflow_provider_avatar.transport",
    "airflow_provider_avatar.hooks",
    "airflow_provider_avatar.testing",
)

MODULES = [
    "airflow_provider_avatar.sensors.base",
    "airflow_provider_avatar.sensors.scenext",
    "airflow_provider_avatar.operators.scenext",
    "airflow_provider_avatar.operators.download",
    "airflow_provider_avatar.sensors.zego",
    "airflow_provider_avatar.operators.zego",
]


def _added_modules(module: str) -> list[str]:
    """Modules that importing ``module`` adds on top of ``airflow.sdk`` (which every DAG file has)."""
    code = (
        "import sys, json; import airflow.sdk; before = set(sys.modules);"
        f"import {module}; print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    added: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return added


@pytest.mark.parametrize("module", MODULES)
def test_module_import_pulls_no_http_client_or_sdk(module: str) -> None:
    heavy = [m for m in _added_modules(module) if m.startswith(HEAVY)]
    assert heavy == [], f"{module} imports {heavy}"


def test_the_check_can_see_a_heavy_import() -> None:
    assert "aiohttp" in _added_modules("airflow_provider_avatar.transport.aio")
