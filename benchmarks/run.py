"""``make bench``: every comparison side by side in one run, then one results table.

1. Trigger density: floor / AvatarTaskTrigger / HttpSensorTrigger at each N, interleaved run by
   run against one simulator process; then once over HTTPS (self-signed certificate).
2. Import cost of every sensor and operator module over ``import airflow.sdk``.
3. Download of a large file: ``curl`` / ``download_file()`` to a local path / to ``file://``.
4. Behaviour under load: slow event-loop callbacks at N waits (with and without ``gc.freeze()``),
   and the request rate of many waits on one rate-limited connection (``benchmarks.loadchecks``).
5. Soak: N mapped waits through the real scheduler and triggerer with 30% of status polls faulted
   (``benchmarks.soak``).

Prints the table and writes it to ``benchmarks/results/latest.md`` (raw figures in
``latest.json``). Benchmarks print figures; nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import date
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks import download, importcost, loadchecks, sharing, soak
from benchmarks.common import REPO, SimProcess, airflow_env, median, raise_fd_limit, self_signed_cert, temp_dir

RESULTS = REPO / "benchmarks" / "results"
VARIANTS = ("floor", "avatar", "http")
LABELS = {"floor": "bare aiohttp loop (floor)", "avatar": "AvatarTaskTrigger", "http": "HttpSensorTrigger"}
#: The targets (issue 13, against the floor of the same run), checked at these sizes.
TARGET_SIZES = (10000, 20000)
#: GC conditions, the real triggerer's first: the 3.3.2 triggerer never calls ``gc.freeze()``.
GC_MODES = {"off": False, "on": True}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_plan(text: str) -> list[tuple[int, int]]:
    """``"1000x1,5000x3"`` → [(1000, 1), (5000, 3)]: trigger counts and runs of each."""
    plan = []
    for item in text.split(","):
        size, _, runs = item.strip().partition("x")
        plan.append((int(size), int(runs or 1)))
    return plan


def density_run(
    env: dict[str, str],
    sim: SimProcess,
    variant: str,
    n: int,
    seed: int,
    args: argparse.Namespace,
    logs: Path,
    freeze: bool,
) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.density", "--variant", variant, "--n", str(n)]
    cmd += ["--api", sim.api, "--sim-pid", str(sim.pid), "--seed", str(seed), "--interval", str(args.interval)]
    cmd += ["--min-duration", str(args.min_duration), "--max-duration", str(args.max_duration)]
    cmd += ["--gc-freeze" if freeze else "--no-gc-freeze"]
    stderr = logs / f"{variant}-{n}-{seed}{'-tls' if sim.api.startswith('https') else ''}-gc{int(freeze)}.log"
    with stderr.open("w") as err:
        out = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=err, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}); see {stderr}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["log_lines"] = sum(1 for _ in stderr.open())
    log(
        f"  {variant:6s} N={n:<6d} run {seed} freeze={int(freeze)}: {result['cpu_ms_per_poll']:.3f} ms/poll, "
        f"p95 {result['delay_p95_s']:.2f} s, {result['rss_mb_per_1000']:.1f} MB/1000, "
        f"{result['requests_per_task']:.1f} req/task, wrong {result['wrong']}, missing {result['missing']}, "
        f"sim {result['sim_us_per_request']:.0f} µs/req, {result['objects_per_wait'] or 0:.1f} objects/wait, "
        f"{result['gc_full_collections']} full GCs (worst {result['gc_worst_full_ms']:.0f} ms)"
    )
    return result


def density(env: dict[str, str], args: argparse.Namespace, logs: Path, tls: bool = False) -> list[dict[str, Any]]:
    """Every (N, run, variant) of the plan against one simulator process; variants interleaved."""
    results = []
    run_env = dict(env)
    cert_dir, pem = None, None
    if tls:
        cert_dir = temp_dir("avatar-bench-tls-")
        pem = self_signed_cert(cert_dir)
        run_env["SSL_CERT_FILE"] = str(pem[0])  # OpenSSL's default verify paths: aiohttp trusts it
    plan = [(args.https_size, 1)] if tls else parse_plan(args.plan)
    variants = args.https_variants.split(",") if tls else args.variants.split(",")
    try:
        with SimProcess(env, tls=pem) as sim:
            for mode in args.gc_modes.split(","):
                for n, runs in plan:
                    for run in range(1, runs + 1):
                        for variant in variants:
                            results.append(density_run(run_env, sim, variant, n, run, args, logs, GC_MODES[mode]))
    finally:
        if cert_dir is not None:
            shutil.rmtree(cert_dir)
    return results


# -- the table ---------------------------------------------------------------------------------------
def spread(values: list[float], fmt: str, unit: str = "") -> str:
    """``median (min-max)`` of several runs, or the single value."""
    if len(values) == 1:
        return format(values[0], fmt) + unit
    return f"{format(median(values), fmt)}{unit} ({format(min(values), fmt)}-{format(max(values), fmt)})"


def density_table(results: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """Markdown rows, plus target verdicts for N in TARGET_SIZES (results of one GC condition)."""
    lines = [
        "| N | variant | runs | CPU ms/poll | ÷ floor | HttpSensor ÷ | GC ms/poll | full GCs (worst ms) "
        "| objects/wait | RSS MB/1000 waiting | p50 / p95 delay s | requests/task (over budget) | wrong / missing "
        "| start-up s (CPU s) | simulator µs/req, % core |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    groups: dict[tuple[bool, int], dict[str, list[dict[str, Any]]]] = {}
    for r in results:
        groups.setdefault((r["tls"], r["n"]), {}).setdefault(r["variant"], []).append(r)
    for (tls, n), by_variant in sorted(groups.items()):

        def ratios(num: str, den: str, by: dict[str, list[dict[str, Any]]] = by_variant) -> list[float]:
            """Per-run ratios (same run, same server), so drift between runs cancels out."""
            pairs = zip(by.get(num, []), by.get(den, []), strict=False)
            return [a["cpu_ms_per_poll"] / b["cpu_ms_per_poll"] for a, b in pairs]

        for variant in VARIANTS:
            rows = by_variant.get(variant)
            if not rows:
                continue

            def col(key: str, rows: list[dict[str, Any]] = rows) -> list[float]:
                return [float(r[key]) for r in rows]

            vs_floor = ratios(variant, "floor") if variant != "floor" else []
            http_over = ratios("http", variant) if variant != "http" else []
            lines.append(
                f"| {n:,}{' TLS' if tls else ''} | {LABELS[variant]} | {len(rows)} "
                f"| {spread(col('cpu_ms_per_poll'), '.3f')} "
                f"| {spread(vs_floor, '.2f', 'x') if vs_floor else '—'} "
                f"| {spread(http_over, '.1f', 'x') if http_over else '—'} "
                f"| {spread(col('gc_ms_per_poll'), '.3f')} "
                f"| {median(col('gc_full_collections')):.0f} ({max(col('gc_worst_full_ms')):.0f}) "
                f"| {median([float(r.get('objects_per_wait') or 0) for r in rows]):.1f} "
                f"| {spread(col('rss_mb_per_1000'), '.1f')} "
                f"| {median(col('delay_p50_s')):.2f} / {spread(col('delay_p95_s'), '.2f')} "
                f"| {median(col('requests_per_task')):.1f} ({int(max(col('over_request_budget')))}) "
                f"| {int(sum(col('wrong')))} / {int(sum(col('missing')))} "
                f"| {median(col('startup_s')):.1f} ({median(col('startup_cpu_s')):.1f}) "
                f"| {median(col('sim_us_per_request')):.0f}, {100 * median(col('sim_core_share')):.0f}% |"
            )
            if variant == "avatar" and n in TARGET_SIZES:
                verdicts += avatar_verdicts(n, tls, rows, by_variant.get("floor", []), vs_floor)
    return lines, verdicts


def avatar_verdicts(
    n: int, tls: bool, rows: list[dict[str, Any]], floor: list[dict[str, Any]], vs_floor: list[float]
) -> list[str]:
    floor_p95 = median([r["delay_p95_s"] for r in floor]) if floor else None
    floor_mb = median([r["rss_mb_per_1000"] for r in floor]) if floor else None
    ours_mb = median([r["rss_mb_per_1000"] for r in rows])
    checks = [
        ("CPU/poll ≤ 1.0x floor", median(vs_floor) <= 1.0 if vs_floor else None, f"{median(vs_floor):.2f}x"),
        (
            "p95 delay ≤ floor's + 0.5 s",
            None if floor_p95 is None else max(r["delay_p95_s"] for r in rows) <= floor_p95 + 0.5,
            None if floor_p95 is None else f"{max(r['delay_p95_s'] for r in rows):.2f} vs {floor_p95:.2f} s",
        ),
        (
            "memory ≤ floor's + 2 MB per 1,000",
            None if floor_mb is None else ours_mb <= floor_mb + 2,
            None if floor_mb is None else f"{ours_mb:.1f} vs {floor_mb:.1f}",
        ),
        ("requests/task ≤ ceil(d/interval)+1", max(r["over_request_budget"] for r in rows) == 0, None),
        ("0 wrong or missing events", sum(r["wrong"] + r["missing"] for r in rows) == 0, None),
    ]
    out = []
    for name, ok, figure in checks:
        if ok is None:
            continue
        extra = f" ({figure})" if figure else ""
        out.append(f"- N={n:,}{' TLS' if tls else ''}: {name}: {'met' if ok else 'MISSED'}{extra}")
    return out


def import_table(result: dict[str, Any]) -> list[str]:
    lines = [
        f"`import airflow.sdk` alone: {result['sdk_ms']:.0f} ms ({result['sdk_min']:.0f}-{result['sdk_max']:.0f}), "
        f"median of {result['runs']} interpreters.",
        "",
        "| module | ms over `import airflow.sdk` | modules added | heavy modules imported | ≤ 30 ms |",
        "|---|---|---|---|---|",
    ]
    for row in result["modules"]:
        ok = row["ms"] <= 30 and not row["heavy"]
        lines.append(
            f"| `{row['module']}` | {row['ms']:.1f} ({row['min']:.1f}-{row['max']:.1f}) | {row['count']} "
            f"| {', '.join(row['heavy']) or 'none'} | {'met' if ok else 'MISSED'} |"
        )
    return lines


def download_table(result: dict[str, Any]) -> list[str]:
    lines = [
        f"{result['size'] / 2**30:g} GiB, median of {result['runs']} rounds (curl, local, file:// interleaved).",
        "",
        "| downloader | MiB/s | ÷ curl | RSS growth MB | targets (≥ 80% of curl, ≤ 64 MB) |",
        "|---|---|---|---|---|",
    ]
    names = {
        "curl": "`curl -o` (ceiling)",
        "local": "`download_file()` → local path",
        "file": "`download_file()` → `file://` ObjectStoragePath",
    }
    for row in result["rows"]:
        growth = row["rss_growth_mb"]
        ok = "—" if growth is None else ("met" if row["ratio_to_curl"] >= 0.8 and growth <= 64 else "MISSED")
        lines.append(
            f"| {names[row['what']]} | {row['mib_s']:.0f} ({row['min']:.0f}-{row['max']:.0f}) "
            f"| {row['ratio_to_curl']:.2f} | {'—' if growth is None else f'{growth:.1f}'} | {ok} |"
        )
    return lines


def _version(name: str) -> str:
    """An installed distribution's version (a section run outside ``make bench`` may lack the bench extra)."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = ", ".join(
        f"{name} {_version(name)}" for name in ("apache-airflow", "aiohttp", "apache-airflow-providers-http")
    )
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, {versions}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small, short runs for development")
    parser.add_argument("--plan", default="5000x1,10000x1,20000x1", help="trigger counts and runs: 1000x1,5000x3")
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--min-duration", type=float, default=10.0)
    parser.add_argument("--max-duration", type=float, default=40.0)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="density variants, e.g. floor,avatar")
    parser.add_argument("--https-size", type=int, default=5000)
    parser.add_argument("--https-variants", default="floor,avatar,http")
    parser.add_argument(
        "--gc-modes", default="off,on", help="gc.freeze() after imports: off (the real triggerer), on, or both"
    )
    parser.add_argument("--sharing-waits", type=int, default=1000, help="waits of the coalescing case")
    parser.add_argument("--import-runs", type=int, default=9)
    parser.add_argument("--download-runs", type=int, default=5)
    parser.add_argument("--download-mib", type=int, default=1024)
    parser.add_argument("--load-waits", type=int, default=300, help="waits for the slow-callback check")
    parser.add_argument(
        "--soak-n", type=int, help=f"mapped waits in the soak (default {soak.DEFAULT_N}, {soak.QUICK_N} quick)"
    )
    parser.add_argument("--only", default="density,sharing,https,imports,download,load,soak")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--merge", action="store_true", help="keep the other sections of the last latest.json")
    parser.add_argument("--render-only", action="store_true", help="print the table of the last latest.json")
    args = parser.parse_args(argv)
    if args.render_only:
        print(render(json.loads((args.out / "latest.json").read_text()), args))
        return
    if args.quick:
        args.plan, args.https_size, args.min_duration, args.max_duration = "500x1,2000x1", 1000, 5.0, 12.0
        args.sharing_waits = 500
        args.import_runs, args.download_runs, args.download_mib = 3, 1, 256
        args.load_waits = 100
    if args.soak_n is None:
        args.soak_n = soak.QUICK_N if args.quick else soak.DEFAULT_N
    only = set(args.only.split(","))
    raise_fd_limit()
    started = time.time()
    home = temp_dir("avatar-bench-airflow-home-")
    env = airflow_env(home)
    logs = temp_dir("avatar-bench-logs-")
    raw: dict[str, Any] = {}
    if args.merge and (args.out / "latest.json").exists():
        raw = json.loads((args.out / "latest.json").read_text())
    raw.setdefault("commands", [])
    command: dict[str, Any] = {"date": date.today().isoformat(), "machine": machine(), "argv": sys.argv[1:]}
    try:
        density_results: list[dict[str, Any]] = []
        if "density" in only:
            log(f"Trigger density over HTTP (plan {args.plan}) ...")
            density_results += density(env, args, logs)
        if "https" in only:
            log(f"Trigger density over HTTPS (N={args.https_size}) ...")
            density_results += density(env, args, logs, tls=True)
        if density_results:
            raw["density"] = density_results
        if "sharing" in only:
            log("Shared polls (coalesced ids, ZEGO list call) ...")
            raw["sharing"] = sharing.run(env, waits=args.sharing_waits, seconds=12.0 if args.quick else 20.0)
        if "imports" in only:
            log("Import cost ...")
            raw["imports"] = importcost.run(env, args.import_runs)
        if "download" in only:
            log("Download ...")
            raw["download"] = download.run(env, args.download_runs, args.download_mib * 2**20)
        if "load" in only:
            log("Behaviour under load (slow callbacks, request rate) ...")
            raw["load"] = loadchecks.run(env, callback_waits=args.load_waits, qps_seconds=4.0 if args.quick else 8.0)
        if "soak" in only:
            log(f"Soak: {args.soak_n} mapped waits through the real triggerer, 30% of status polls faulted ...")
            raw["soak"] = soak.run(args.soak_n, quick=args.quick)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    command["minutes"] = (time.time() - started) / 60
    command["sections"] = sorted(only)
    raw["commands"].append(command)
    report = render(raw, args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.md").write_text(report)
    (args.out / "latest.json").write_text(json.dumps(raw, indent=1) + "\n")
    shutil.rmtree(logs, ignore_errors=True)
    print(report)


def render(raw: dict[str, Any], args: argparse.Namespace) -> str:
    out = []
    for command in raw["commands"]:
        argv = " ".join(command["argv"])
        line = "make bench" + (f" BENCH_ARGS='{argv}'" if argv else "")
        out.append(
            f"- `{line}` on {command['date']} ({', '.join(command['sections'])}; {command['minutes']:.1f} minutes); "
            f"{command['machine']}."
        )
    out.append("")
    for freeze in (False, True):
        results = [r for r in raw.get("density", []) if bool(r.get("gc_freeze")) is freeze]
        if not results:
            continue
        lines, verdicts = density_table(results)
        budget = math.ceil(args.max_duration / args.interval) + 1
        condition = "gc.freeze() after imports" if freeze else "no gc.freeze(), as in the 3.3.2 triggerer"
        out += [
            f"### Trigger density (poll every {args.interval:g} s, tasks finish {args.min_duration:g}-"
            f"{args.max_duration:g} s after start; {condition})",
            "",
            *lines,
            "",
            f"Medians with (min-max) over runs; ratios are per run, then the median. Request budget per task: "
            f"ceil(duration / interval) + 1 (at most {budget}). Full GCs and their worst pause are counted "
            "in the steady state; objects/wait is the growth of `gc.get_objects()` per wait while all wait.",
            "",
            *(verdicts or ["- (no target size in this run)"]),
            "",
        ]
    if raw.get("sharing"):
        out += ["### Shared polls", "", *sharing.table(raw["sharing"]), ""]
    if raw.get("imports"):
        out += ["### Import cost", "", *import_table(raw["imports"]), ""]
    if raw.get("download"):
        out += ["### Download", "", *download_table(raw["download"]), ""]
    if raw.get("load"):
        out += ["### Behaviour under load", "", *loadchecks.table(raw["load"]), ""]
    if raw.get("soak"):
        out += ["### Soak through the real triggerer", "", *soak.table(raw["soak"]), ""]
    return "\n".join(out)


if __name__ == "__main__":
    main()
