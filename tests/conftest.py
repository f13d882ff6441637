"""Shared fixtures: an isolated AIRFLOW_HOME, the simulator on loopback, env-var connections."""

from __future__ import annotations

import ipaddress
import os
import socket
import tempfile
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

# Airflow reads AIRFLOW_HOME at import: isolate it before anything imports airflow.
_HOME = Path(tempfile.mkdtemp(prefix="avatar-tests-airflow-home-"))
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
# dag.test() re-parses the dags-folder bundle: point it at the example DAGs.
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).resolve().parents[1] / "dags_examples")

import pytest  # noqa: E402

from airflow_provider_avatar.clock import use_clock  # noqa: E402
from airflow_provider_avatar.services import SERVICES  # noqa: E402
from airflow_provider_avatar.testing.clock import FakeClock  # noqa: E402
from airflow_provider_avatar.testing.simulator import Simulator  # noqa: E402

#: One sentinel secret per service (the simulator's key for it): none may ever show up in logs,
#: XCom, trigger kwargs or error text. A service added to the registry gets one automatically.
SENTINELS = {key: f"{key}-SENTINEL-{zlib.crc32(key.encode()):08x}" for key in SERVICES}
#: The Scenext API key, and the ZEGO ServerSecret (it signs requests; it is never sent or shown).
SENTINEL_KEY = SENTINELS["scenext"]
SENTINEL_ZEGO_SECRET = SENTINELS["zego"]
REPO = Path(__file__).resolve().parents[1]


_real_connect = socket.socket.connect


def _loopback_only_connect(self: socket.socket, address: Any) -> Any:
    """Tests talk to the simulator on loopback only: any other destination is a test bug."""
    if self.family in (socket.AF_INET, socket.AF_INET6):
        host = address[0]
        if not ipaddress.ip_address(host.split("%", 1)[0]).is_loopback:
            raise AssertionError(f"a test tried to connect to {host}; tests use the local simulator only")
    return _real_connect(self, address)


@pytest.fixture(autouse=True, scope="session")
def _no_network_beyond_loopback() -> Iterator[None]:
    socket.socket.connect = _loopback_only_connect  # type: ignore[method-assign]
    try:
        yield
    finally:
        socket.socket.connect = _real_connect  # type: ignore[method-assign]


@pytest.fixture(scope="session")
def simulator() -> Iterator[Simulator]:
    sim = Simulator(api_keys=SENTINELS, task_duration=1.0).start()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def sim(simulator: Simulator) -> Iterator[Simulator]:
    """The shared simulator, reset (tasks, faults, request log) around each test."""
    simulator.reset()
    yield simulator
    simulator.reset()


def connection_env(sim: Simulator, service: str, **extra: object) -> dict[str, str]:
    """``<service>_default`` on the simulator, with a short read timeout (a hung test fails fast)."""
    return sim.connection_env(service, read_timeout=2, **extra)


@pytest.fixture
def use_connection(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Simulator]:
    """``use_connection(service, **extra)``: ``<service>_default`` points at the simulator."""

    def use(service: str, **extra: object) -> Simulator:
        for key, value in connection_env(sim, service, **extra).items():
            monkeypatch.setenv(key, value)
        return sim

    return use


@pytest.fixture
def trtc_conn(use_connection: Callable[..., Simulator], monkeypatch: pytest.MonkeyPatch) -> Simulator:
    """``trtc_default`` (SecretId + sentinel SecretKey and SDK secret key, region, SdkAppId) on the simulator."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)  # the Tencent SDK honours them; the simulator is on loopback
    return use_connection("trtc")


@pytest.fixture
def scenext_conn(use_connection: Callable[..., Simulator]) -> Simulator:
    """``scenext_default`` pointing at the simulator (loopback downloads allowed)."""
    return use_connection("scenext")


@pytest.fixture
def zego_conn(use_connection: Callable[..., Simulator]) -> Simulator:
    """``zego_default`` (AppId + sentinel ServerSecret) pointing at the simulator."""
    return use_connection("zego")


@pytest.fixture
def fake_clock(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClock]:
    """Virtual time for the provider, the simulator's timelines and Airflow's poke loop.

    Every sleep is instant and every time read exact, so timing assertions hold on any machine.
    """
    import airflow.sdk.bases.sensor as airflow_sensor
    import TLSSigAPIv2
    from tencentcloud.common import abstract_client

    clock = FakeClock()
    monkeypatch.setattr(sim.state, "clock", clock.time)
    # The Tencent SDK signs with its own time.time() and TLSSigAPIv2 stamps UserSigs with it:
    # both must agree with the simulator's clock, which checks them.
    monkeypatch.setattr(abstract_client, "time", SimpleNamespace(time=clock.time))
    monkeypatch.setattr(TLSSigAPIv2, "time", SimpleNamespace(time=clock.time))
    # BaseSensorOperator's poke loop sleeps and measures its timeout itself.
    monkeypatch.setattr(airflow_sensor, "time", SimpleNamespace(sleep=clock.sleep, monotonic=clock.monotonic))
    monkeypatch.setattr(
        airflow_sensor, "timezone", SimpleNamespace(utcnow=lambda: datetime.fromtimestamp(clock.time(), UTC))
    )
    with use_clock(clock):
        yield clock


@pytest.fixture
def airflow_db() -> None:
    """A migrated SQLite metadata DB in the isolated AIRFLOW_HOME (for dag.test)."""
    marker = _HOME / ".db-ready"
    if not marker.exists():
        from airflow.utils import db

        db.resetdb()
        marker.touch()


@pytest.fixture(autouse=True)
def _fresh_rate_limiters() -> None:
    from airflow_provider_avatar.transport.ratelimit import reset_limiters

    reset_limiters()


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> Callable[[], str]:
    """Everything logged so far: stdlib records and Airflow's structlog output (stdout/stderr)."""
    seen: list[str] = []

    def read() -> str:
        out, err = capfd.readouterr()
        seen.extend([out, err])
        return "\n".join([*seen, caplog.text])

    return read
