"""Import cost of every sensor and operator module, over ``import airflow.sdk``.

For each module found by glob (``sensors/*.py``, ``operators/*.py``), a fresh interpreter runs
``python -X importtime -c "import airflow.sdk; import <module>"``; the figure is the sum of the
``self`` times of every import that happens after ``airflow.sdk`` has finished, i.e. what the
module adds to a DAG file that already imports the Task SDK. Median of ``runs`` interpreters.
It also lists which heavy modules (HTTP clients, vendor SDKs, ...) the import pulled in.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from benchmarks.common import REPO, median

#: Modules a DAG file must not pay for when it only imports our sensors and operators.
HEAVY = ("aiohttp", "requests", "urllib3", "tenacity", "tencentcloud", "fsspec", "yarl", "multidict")
PACKAGE = REPO / "airflow_provider_avatar"


def modules() -> list[str]:
    """Every sensor and operator module on disk (new services are picked up automatically)."""
    found = []
    for folder in ("sensors", "operators"):
        for path in sorted((PACKAGE / folder).glob("*.py")):
            if path.name != "__init__.py":
                found.append(f"airflow_provider_avatar.{folder}.{path.stem}")
    return found


def _parse(stderr: str) -> list[tuple[int, str]]:
    """(self µs, module) rows of ``-X importtime``, in import order."""
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _cumulative, name = line[len("import time:") :].split("|")
        rows.append((int(self_us), name.strip()))
    return rows


def measure_once(module: str | None, env: dict[str, str]) -> tuple[float, float, list[str]]:
    """(ms for airflow.sdk, ms added by ``module``, modules it added) in a fresh interpreter."""
    code = "import airflow.sdk" + (f"; import {module}" if module else "")
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], env=env, capture_output=True, text=True, check=True
    )
    rows = _parse(out.stderr)
    sdk_at = max(i for i, (_, name) in enumerate(rows) if name == "airflow.sdk")
    before, after = rows[: sdk_at + 1], rows[sdk_at + 1 :]
    return sum(us for us, _ in before) / 1000, sum(us for us, _ in after) / 1000, [name for _, name in after]


def run(env: dict[str, str], runs: int) -> dict[str, Any]:
    """Median over ``runs`` interpreters for the baseline and each module."""
    measure_once(None, env)  # warm-up: first use of AIRFLOW_HOME, page cache
    baseline = [measure_once(None, env)[0] for _ in range(runs)]
    results = []
    for module in modules():
        samples = [measure_once(module, env) for _ in range(runs)]
        added = [ms for _, ms, _ in samples]
        heavy = sorted({name for _, _, names in samples for name in names if name.split(".")[0] in HEAVY})
        results.append(
            {
                "module": module,
                "ms": median(added),
                "min": min(added),
                "max": max(added),
                "heavy": heavy,
                "count": len(samples[0][2]),
            }
        )
    return {
        "runs": runs,
        "sdk_ms": median(baseline),
        "sdk_min": min(baseline),
        "sdk_max": max(baseline),
        "modules": results,
    }
