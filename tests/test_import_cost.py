"""DAG files import our sensors and operators on every parse: keep heavy clients out of that."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_avatar.services import SERVICES

HEAVY = (
    "aiohttp",
    "requests",
    "urllib3",
    "tenacity",
    "tencentcloud",
    "airflow_provider_avatar.transport",
    "airflow_provider_avatar.hooks",
    "airflow_provider_avatar.testing",
)

#: The generic modules plus every service's sensor and operator modules, from the registry.
MODULES = [
    "airflow_provider_avatar.sensors.base",
    "airflow_provider_avatar.operators.download",
    *(row.module(kind) for row in SERVICES.values() for kind in ("sensors", "operators") if kind in row.kinds),
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


def test_every_sensor_and_operator_module_is_checked() -> None:
    """Every sensor and operator module on disk is checked: a module outside the registry's naming
    (``sensors/<service>.py``) must be added to MODULES by hand, since DAG files import it too."""
    package = Path(__file__).resolve().parents[1] / "airflow_provider_avatar"
    on_disk = {
        f"airflow_provider_avatar.{folder}.{path.stem}"
        for folder in ("sensors", "operators")
        for path in (package / folder).glob("*.py")
        if path.stem != "__init__"
    }
    assert on_disk <= set(MODULES), f"not checked: {sorted(on_disk - set(MODULES))}"
