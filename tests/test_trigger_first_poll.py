"""The first trigger of this provider in a fresh triggerer must not stall the triggerer's event loop.

The triggerer imports the trigger's module on its loop thread, and the first poll needs aiohttp and
the service's hook (~0.25-0.6 s to import on a busy machine: "Triggerer's async thread was blocked").
So the trigger module stays light, and ``run()`` imports the heavy modules in a worker thread. Both
are checked by which modules are imported and on which thread, not by timing.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from airflow_provider_avatar.services import SERVICES

TRIGGER_MODULE = "airflow_provider_avatar.triggers.task_status"
#: Too heavy to import on the triggerer's event loop.
HEAVY = ("aiohttp", "requests", "urllib3", "tenacity", "tencentcloud", "airflow_provider_avatar.hooks")
HEAVY_MODULES = (*HEAVY, "airflow_provider_avatar.transport.aio")

#: Runs one trigger to its first event in a fresh interpreter and reports, per heavy module, the
#: thread that imported it. The connection points at a closed port, so the poll fails fast and the
#: trigger ends at its deadline; the imports happen before the first request either way.
SCRIPT = """
import asyncio, json, os, socket, sys, threading, time
import airflow.sdk, airflow.triggers.base  # loaded in every triggerer before any trigger
heavy = tuple(json.loads(sys.argv[2]))
threads = {}
class Recorder:
    def find_spec(self, name, path=None, target=None):
        if name.startswith(heavy) and name not in threads:
            threads[name] = threading.current_thread() is threading.main_thread()
        return None
sys.meta_path.insert(0, Recorder())
import airflow_provider_avatar.triggers.task_status as mod
at_import = sorted(threads)
with socket.socket() as s:
    s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]  # closed once this block ends
service = sys.argv[1]
os.environ[f"AIRFLOW_CONN_{service.upper()}_DEFAULT"] = json.dumps(
    {"conn_type": service, "host": f"http://127.0.0.1:{port}", "login": "1", "password": "k",
     "extra": {"allow_private_hosts": True, "region": "ap-guangzhou", "sdk_app_id": "1400000001",
               "sdk_secret_key": "k"}})
trigger = mod.AvatarTaskTrigger(service=service, conn_id=f"{service}_default", remote_task_id="t1",
    target_states=["SUCCEEDED"], failure_states=["FAILED"], poll_interval=0.2, deadline=time.time() + 1)
async def first_event():
    async for event in trigger.run():
        return event.payload
event = asyncio.run(first_event())
print(json.dumps({"at_import": at_import, "on_loop": sorted(n for n, main in threads.items() if main),
                  "off_loop": sorted(n for n, main in threads.items() if not main), "event": event["status"]}))
"""


def _first_trigger(service: str) -> dict[str, list[str] | str]:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, service, json.dumps(HEAVY_MODULES)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result: dict[str, list[str] | str] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_first_trigger_imports_heavy_modules_off_the_event_loop(service: str) -> None:
    seen = _first_trigger(service)
    assert seen["at_import"] == [], f"importing {TRIGGER_MODULE} pulls {seen['at_import']}"
    assert seen["on_loop"] == [], f"the first {service} trigger imported {seen['on_loop']} on the event loop"
    assert "aiohttp" in seen["off_loop"], f"the check saw no heavy import at all: {seen}"
    assert seen["event"] in ("timeout", "error"), seen
