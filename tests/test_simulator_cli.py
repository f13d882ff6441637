"""``python -m airflow_provider_avatar.testing.simulator``: its help, its ready output and its request log."""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

CLI = (sys.executable, "-m", "airflow_provider_avatar.testing.simulator")
API_KEY = "cli-key-7b1e0c"
#: Only against a hang (a CLI that never prints or never exits); nothing asserts how long anything takes.
HANG_GUARD = 120.0


@dataclass
class RunningCli:
    proc: subprocess.Popen[str]
    info: dict[str, Any]
    exports: list[str]
    stderr: Path

    def stop(self) -> str:
        """SIGTERM (what Ctrl-C or `kill` sends), wait for the exit, return everything logged to stderr."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(HANG_GUARD)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.stderr.read_text(encoding="utf-8")


@pytest.fixture
def run_cli(tmp_path: Path) -> Iterator[Any]:
    """Start the CLI on free ports; read its ready line and one export line per service."""
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str) -> RunningCli:
        stderr = tmp_path / f"cli-{len(procs)}.err"
        with stderr.open("w") as err:
            cmd = [*CLI, "--port", "0", "--file-port", "0", "--api-key", API_KEY, *args]
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, text=True)
        procs.append(proc)
        guard = threading.Timer(HANG_GUARD, proc.kill)
        guard.start()
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline()
            assert first, f"the simulator printed nothing: {stderr.read_text(encoding='utf-8')}"
            info = json.loads(first)
            exports = [proc.stdout.readline().rstrip("\n") for _ in info["services"]]
        finally:
            guard.cancel()
        return RunningCli(proc, info, exports, stderr)

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_help_gives_every_option_a_description_and_its_default() -> None:
    out = subprocess.run([*CLI, "--help"], capture_output=True, text=True, check=True).stdout
    options = out.split("options:", 1)[1].split("\n\n", 1)[0]
    entries = re.split(r"\n(?=  -)", options.strip("\n"))  # one entry per option, continuation lines joined
    described = {entry.split()[0].rstrip(","): " ".join(entry.split()) for entry in entries}
    assert {"--host", "--port", "--file-port", "--duration", "--api-key", "--log-requests", "--no-log"} <= set(
        described
    )
    for option, entry in described.items():
        if option != "-h":
            assert "(default: " in entry, entry
    assert "(default: 127.0.0.1)" in described["--host"]
    assert "(default: 0)" in described["--port"]
    assert "(default: 3.0)" in described["--duration"]
    assert "(default: sim-api-key)" in described["--api-key"]


def test_export_lines_are_working_airflow_connections_to_the_simulator(
    run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk import Connection

    from airflow_provider_avatar.services import make_hook

    cli = run_cli()
    # The first line stays one JSON object (scripts/demo.py and the benchmarks parse it).
    assert cli.info["ready"] is True
    assert set(cli.info["services"]) >= {"scenext", "zego"}
    assert len(cli.exports) == len(cli.info["services"])
    for line, (service, url) in zip(cli.exports, cli.info["services"].items(), strict=True):
        command, assignment = shlex.split(line)  # as a shell reads it
        name, value = assignment.split("=", 1)
        assert (command, name) == ("export", f"AIRFLOW_CONN_{service.upper()}_DEFAULT")
        conn = Connection.from_json(value, conn_id=f"{service}_default")
        assert conn.conn_type == service
        assert conn.host == url
        assert urlsplit(conn.host).hostname == "127.0.0.1"
        assert conn.password == API_KEY
        assert conn.login == cli.info["logins"].get(service)
        assert conn.extra_dejson["allow_private_hosts"] is True
        # Loaded the way Airflow reads it, the connection reaches the service and its credentials are accepted.
        monkeypatch.setenv(name, value)
        ok, message = make_hook(service).test_connection()
        assert ok, f"{service}: {message}"
    cli.stop()


def _call(url: str, method: str = "GET", headers: dict[str, str] | None = None, body: bytes | None = None) -> int:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=HANG_GUARD) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_log_requests_logs_one_line_per_request_without_secrets(run_cli: Any) -> None:
    cli = run_cli("--log-requests")
    scenext, zego, api = cli.info["services"]["scenext"], cli.info["services"]["zego"], cli.info["api"]
    bearer = {"Authorization": f"Bearer {API_KEY}"}
    _call(f"{scenext}/get_status/task-1?token=query-secret", headers=bearer)
    _call(f"{zego}?Action=QueryDigitalHumanStreamTasks&AppId=1&Signature=sig-secret-123", method="POST", body=b"{}")
    faults = json.dumps({"service": "scenext", "error_rate": 1.0, "kinds": ["503"]}).encode()
    _call(f"{api}/_sim/faults", method="POST", body=faults, headers={"Content-Type": "application/json"})
    assert _call(f"{scenext}/get_status/task-2", headers=bearer) == 503
    logged = cli.stop()

    assert re.search(r"GET /scenext/api/get_status/task-1 -> 404 fault=- \d+\.\d ms$", logged, re.MULTILINE), logged
    assert re.search(r"POST /zego Action=QueryDigitalHumanStreamTasks -> \d{3} fault=- ", logged), logged
    assert re.search(r"GET /scenext/api/get_status/task-2 -> 503 fault=503 ", logged), logged
    for secret in (API_KEY, "Bearer", "query-secret", "token=", "sig-secret-123", "Signature", "AppId=1"):
        assert secret not in logged


def test_requests_are_not_logged_unless_asked(run_cli: Any) -> None:
    cli = run_cli()
    _call(f"{cli.info['services']['scenext']}/get_status/task-1")
    assert "/scenext/" not in cli.stop()
