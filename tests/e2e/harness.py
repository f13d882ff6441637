"""The e2e tests' deployment: ``scripts/airflow_deployment.py`` with the example DAGs' settings and the
in-process simulator's connections.

Everything that starts, kills, waits for and inspects the real components lives in that module (shared
with the soak benchmark); this layer only adds what the tests have in common.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
from airflow_deployment import (  # noqa: E402
    Deployment,
    defer_exit_processed,
    deferred_exits,
    release_after_defer_exit,
    run_state,
    wait_for,
    wait_for_run,
    wait_until_ready,
)
from airflow_deployment import deploy as deploy_airflow  # noqa: E402
from airflow_env import connection_env, file_facts  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

    from airflow_provider_avatar.testing.simulator import Simulator

__all__ = [
    "EXAMPLES",
    "LOCAL_DAGS",
    "Deployment",
    "defer_exit_processed",
    "deferred_exits",
    "deploy",
    "file_facts",
    "release_after_defer_exit",
    "run_state",
    "wait_for",
    "wait_for_run",
    "wait_until_ready",
]

EXAMPLES = REPO / "dags_examples"
LOCAL_DAGS = Path(__file__).resolve().parent / "dags"


@contextlib.contextmanager
def deploy(
    tmp_path: Path,
    simulator: Simulator,
    api_key: str,
    dag_files: Iterable[Path],
    *,
    triggerers: int = 1,
    settings: Mapping[str, str] | None = None,
    args: Mapping[str, list[str]] | None = None,
    later: Iterable[str] = (),
) -> Iterator[Deployment]:
    """``airflow_deployment.deploy`` with connections to ``simulator`` (every service, key ``api_key``) and
    the example DAGs polling every second and downloading into ``dep.videos``; ``settings`` come last."""
    example_settings = {
        "AVATAR_EXAMPLE_POLL_INTERVAL": "1",
        "AVATAR_EXAMPLE_OUTPUT_DIR": str(tmp_path / "videos"),
        **connection_env(simulator.info(), api_key),
        **(settings or {}),
    }
    with deploy_airflow(
        tmp_path, dag_files, triggerers=triggerers, settings=example_settings, args=args, later=later
    ) as dep:
        yield dep
