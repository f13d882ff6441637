"""How long the first trigger of this provider blocks a fresh triggerer's event loop.

A fresh interpreter loads what a triggerer has loaded (``airflow.sdk``, ``airflow.triggers.base``),
imports the trigger module on the loop thread (as the triggerer does), then runs one trigger to its
first event while a watchdog coroutine records the longest time the loop did not get back to it;
then a second trigger the same way, for what every later trigger costs.
``off-loop`` is the shipped behaviour (hook and aiohttp imported in a worker thread); ``on-loop``
replaces that step with nothing, as before, so the first poll imports them on the loop.

    python -m benchmarks.first_trigger [--runs 5] [--service scenext]

Prints the median and maximum stall per variant (real time: the figures depend on the machine).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from benchmarks.common import median

SCRIPT = """
import asyncio, json, os, socket, sys, time
import airflow.sdk, airflow.triggers.base
service, variant = sys.argv[1], sys.argv[2]
async def main():
    stall = 0.0
    async def watchdog():
        nonlocal stall
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.005)
            stall = max(stall, time.perf_counter() - before - 0.005)
    dog = asyncio.create_task(watchdog())
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    import airflow_provider_avatar.triggers.task_status as mod  # the triggerer imports it on its loop
    module_s = time.perf_counter() - started
    if variant == "on-loop":
        async def nothing(service):
            return None
        mod.import_off_loop = nothing
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    os.environ[f"AIRFLOW_CONN_{service.upper()}_DEFAULT"] = json.dumps(
        {"conn_type": service, "host": f"http://127.0.0.1:{port}", "login": "1", "password": "k",
         "extra": {"allow_private_hosts": True, "region": "ap-guangzhou", "sdk_app_id": "1400000001",
                   "sdk_secret_key": "k"}})
    stalls = []
    for _ in range(2):  # the first trigger, then one more for comparison
        trigger = mod.AvatarTaskTrigger(service=service, conn_id=f"{service}_default", remote_task_id="t1",
            target_states=["SUCCEEDED"], failure_states=["FAILED"], poll_interval=0.2, deadline=time.time() + 1)
        async for _ in trigger.run():
            break
        stalls.append(stall)
        stall = 0.0
    dog.cancel()
    print(json.dumps({"stall": stalls[0], "next": stalls[1], "module": module_s}))
asyncio.run(main())
"""


def measure(service: str, variant: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, service, variant], capture_output=True, text=True, timeout=300, check=True
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.first_trigger", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--service", default="scenext")
    args = parser.parse_args(argv)
    print(f"first {args.service} trigger in a fresh interpreter, {args.runs} runs per variant (ms)")
    print(f"{'variant':10} {'first: median':>14} {'max':>7} {'second: median':>15} {'max':>7} {'module import':>14}")
    for variant in ("on-loop", "off-loop"):
        runs = [measure(args.service, variant) for _ in range(args.runs)]
        first, second = ([r[key] * 1000 for r in runs] for key in ("stall", "next"))
        module = median([r["module"] * 1000 for r in runs])
        print(
            f"{variant:10} {median(first):14.1f} {max(first):7.1f} {median(second):15.1f} {max(second):7.1f}"
            f" {module:14.1f}"
        )


if __name__ == "__main__":
    main()
