"""Helpers shared by ``scripts/demo.py``, ``scripts/airflow_deployment.py`` (the e2e tests, the soak) and
``scripts/check_connection_forms.py``: hermetic Airflow env, connections, process groups.

Standard library only, so importing it costs nothing and works before Airflow is configured.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from pathlib import Path

#: Inherited variables dropped so a developer's own Airflow settings cannot leak into a run.
_SCRUBBED_PREFIXES = ("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_", "AVATAR_EXAMPLE_")
_SCRUBBED_NAMES = ("AIRFLOW_HOME", "AIRFLOW_CONFIG")

#: ``airflow ...`` with the interpreter that runs this code (the project's venv).
AIRFLOW = (sys.executable, "-m", "airflow")


def connection_env(info: Mapping[str, Any], api_key: str) -> dict[str, str]:
    """``AIRFLOW_CONN_<SERVICE>_DEFAULT`` for every simulated service, from the simulator's ready line
    (``services``: API base URLs; ``logins``: account ids such as ZEGO's AppId; ``extras`` and
    ``secret_extras``: TRTC's region, SdkAppId and the extras that take the key)."""
    from airflow_provider_avatar.testing.simulator import connection_env as simulated

    return simulated(
        info["services"],
        api_key,
        info.get("logins") or {},
        extras=info.get("extras"),
        secret_extras=info.get("secret_extras"),
    )


def airflow_env(home: Path, dags_folder: Path, **settings: str) -> dict[str, str]:
    """The current environment minus inherited Airflow settings, plus a SQLite home and ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES) and k not in _SCRUBBED_NAMES}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(dags_folder),
    )
    env.update(settings)
    return env


def start_logged(cmd: Sequence[str], log_path: Path, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in its own process group (session) with stdout and stderr appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env),
            start_new_session=True,
        )


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    # The group outlives its leader while children remain; a gone group is fine.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def kill_group(proc: subprocess.Popen[bytes], wait: float = 30.0) -> None:
    """SIGKILL a process group at once (as a pod kill would: no cleanup) and reap its leader."""
    _signal_group(proc, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(wait)


def stop_groups(procs: Iterable[subprocess.Popen[bytes]], grace: float = 20.0) -> None:
    """SIGTERM each process group, wait up to ``grace`` seconds in total, then SIGKILL the rest (at once if 0)."""
    procs = list(procs)
    for proc in procs:
        _signal_group(proc, signal.SIGTERM if grace > 0 else signal.SIGKILL)
    deadline = time.monotonic() + grace
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(max(0.0, deadline - time.monotonic()))
    for proc in procs:
        _signal_group(proc, signal.SIGKILL)  # also reaps stragglers of a leader that already exited
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)


def run_logged(cmd: Sequence[str], log_path: Path, env: Mapping[str, str], timeout: float) -> int | None:
    """Run ``cmd`` to completion; return its exit code, or None if its group was SIGKILLed at ``timeout``."""
    proc = start_logged(cmd, log_path, env)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return None
    finally:  # timeout, Ctrl-C or success: nothing of it may outlive this call
        stop_groups([proc], grace=0)


def query(db: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    """Rows of one read-only query on a SQLite metadata DB; none if the DB is missing or busy."""
    if not db.is_file():
        return []
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as conn:
            return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError:  # locked by a writer, or a table not created yet
        return []


def file_facts(path: Path) -> tuple[int, str, bool]:
    """(size, sha256 hex, starts with an MP4 ``ftyp`` box) of a file."""
    digest = hashlib.sha256()
    size = 0
    head = b""
    with path.open("rb") as f:
        while chunk := f.read(1024 * 1024):
            if size == 0:
                head = chunk[:8]
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest(), head[4:8] == b"ftyp"


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a text file (or a note that it is missing)."""
    if not path.is_file():
        return f"({path} does not exist)"
    with path.open(encoding="utf-8", errors="replace") as f:
        return "".join(deque(f, maxlen=lines))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
