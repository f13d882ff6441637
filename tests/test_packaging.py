"""What the package claims to support is what CI tests, and every tested pair installs from a committed lock."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
MAKEFILE = (ROOT / "Makefile").read_text()


def _make_var(name: str) -> str:
    match = re.search(rf"^{name} :?= *(.+)$", MAKEFILE, re.MULTILINE)
    assert match, f"Makefile defines no {name}"
    return match.group(1).strip()


def _floor(requirement_name: str) -> str:
    for requirement in PYPROJECT["project"]["dependencies"]:
        match = re.fullmatch(rf"{re.escape(requirement_name)}>=([0-9.]+)", requirement)
        if match:
            return match.group(1)
    raise AssertionError(f"pyproject.toml has no {requirement_name}>=... requirement")


def test_the_claimed_airflow_floor_is_the_one_ci_tests() -> None:
    assert _floor("apache-airflow") == _make_var("AIRFLOW_FLOOR")


def test_the_claimed_pythons_are_the_ones_ci_tests() -> None:
    pythons = _make_var("PYTHONS").split()
    assert PYPROJECT["project"]["requires-python"] == f">={pythons[0]}"
    assert _make_var("PYTHON_OLDEST") == pythons[0]
    classifiers = [c.rsplit(" :: ", 1)[1] for c in PYPROJECT["project"]["classifiers"] if "Python :: 3." in c]
    assert classifiers == pythons
    assert PYPROJECT["tool"]["ruff"]["target-version"] == "py" + pythons[0].replace(".", "")
    assert PYPROJECT["tool"]["mypy"]["python_version"] == pythons[0]


def test_every_ci_pair_has_a_committed_lock_pinning_its_airflow() -> None:
    floor = _make_var("AIRFLOW_FLOOR")
    pairs = (
        _make_var("LOCKED").replace("$(AIRFLOW_FLOOR)", floor).replace("$(PYTHON_OLDEST)", _make_var("PYTHON_OLDEST"))
    )
    for pair in pairs.split():
        airflow, python = pair.split("/")
        lock = ROOT / "constraints" / f"airflow-{airflow}-py{python}.txt"
        assert lock.is_file(), f"no lock for Airflow {airflow} on Python {python}: run `make lock`"
        assert re.search(rf"^apache-airflow=={re.escape(airflow)}$", lock.read_text(), re.MULTILINE), lock.name
