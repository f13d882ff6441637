"""Print the reliability suite as a table of checks x services: ``pass``, ``FAIL`` or the reason a cell
does not apply. Runs pytest on ``tests/reliability`` with a small plugin.

    .venv/bin/python -m tests.reliability.matrix [extra pytest args]
"""

from __future__ import annotations

import sys
from collections import defaultdict
from typing import Any

import pytest

from airflow_provider_avatar.services import SERVICES

#: Row titles; 0 is the mode agreement (poke, reschedule and deferrable give the same answer).
CHECKS = {
    0: "poke = reschedule = deferrable",
    1: "transient faults never end a wait",
    2: "auth/permanent errors end at once",
    3: "rate limits respected",
    4: "deadlines are absolute",
    5: "triggers only read",
    6: "event loop never blocked",
    7: "no secret leaves its box",
    8: "status mapping is total",
    9: "stops idempotent, teardown",
    10: "downloads bounded and atomic",
    11: "service URLs untrusted",
    12: "triggers small, serializable",
}


class Collector:
    def __init__(self) -> None:
        #: (check, service) -> outcomes of its tests: "passed", "failed" or a skip reason.
        self.cells: dict[tuple[int, str], list[str]] = defaultdict(list)
        self._cell: dict[str, tuple[int, str]] = {}

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            marker = item.get_closest_marker("check")
            callspec = getattr(item, "callspec", None)
            service = callspec.params.get("service") if callspec is not None else None
            if marker is not None and service:
                self._cell[item.nodeid] = (int(marker.args[0]), service)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        cell = self._cell.get(report.nodeid)
        if cell is None or (report.when != "call" and not report.failed and not report.skipped):
            return
        if report.skipped:
            reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else "skipped"
            self.cells[cell].append(reason.removeprefix("Skipped: ").split(": ", 1)[-1])
        else:
            self.cells[cell].append(report.outcome)


def cell_text(outcomes: list[str]) -> str:
    if not outcomes:
        return "-"
    if "failed" in outcomes:
        return f"FAIL ({outcomes.count('failed')}/{len(outcomes)})"
    skipped = sorted({o for o in outcomes if o != "passed"})
    passed = outcomes.count("passed")
    if not passed:
        return "n/a: " + "; ".join(skipped)
    note = f" (n/a: {'; '.join(skipped)})" if skipped else ""
    return f"pass {passed}/{len(outcomes)}{note}"


def render(cells: dict[tuple[int, str], list[str]]) -> str:
    services = list(SERVICES)
    lines = ["| check | " + " | ".join(services) + " |", "|---|" + "---|" * len(services)]
    for number, title in CHECKS.items():
        row = [cell_text(cells.get((number, key), [])) for key in services]
        label = "mode agreement" if number == 0 else f"{number}. {title}"
        lines.append(f"| {label} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    collector = Collector()
    args: list[Any] = ["-q", "-p", "no:cacheprovider", "tests/reliability", *(argv or [])]
    code = pytest.main(args, plugins=[collector])
    print()
    print(render(collector.cells))
    return int(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
