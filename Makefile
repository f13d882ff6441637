# One-command set-up: every target creates its virtualenv itself (uv, installed with pip if missing) from the
# committed lock for AIRFLOW_VERSION x PYTHON_VERSION (constraints/), so a fresh clone installs what CI tested.
AIRFLOW_VERSION ?= 3.3.2
PYTHON_VERSION ?= 3.11
# The oldest Airflow pyproject.toml claims (CI tests it on the oldest Python) and the Pythons CI tests.
AIRFLOW_FLOOR := 3.3.0
PYTHON_OLDEST := 3.11
PYTHONS := 3.11 3.12 3.13
# Every lock `make lock` keeps current: Airflow/Python pairs, plus the bench lock of the default pair.
LOCKED := 3.3.2/3.11 3.3.2/3.12 3.3.2/3.13 $(AIRFLOW_FLOOR)/$(PYTHON_OLDEST)

DEFAULT := $(filter 3.3.2/3.11,$(AIRFLOW_VERSION)/$(PYTHON_VERSION))
# `make test` uses .venv; other pairs get their own (.venv-3.3.0-py3.11, ...), so switching never reinstalls.
VENV ?= $(if $(DEFAULT),.venv,.venv-$(AIRFLOW_VERSION)-py$(PYTHON_VERSION))
BIN := $(VENV)/bin
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
PYENV_ROOT ?= $(HOME)/.pyenv
# An exact interpreter: pyenv's install of that version (its shims answer only for the active one), else uv finds
# or fetches one by version.
PYTHON ?= $(or $(lastword $(wildcard $(PYENV_ROOT)/versions/$(PYTHON_VERSION).*/bin/python$(PYTHON_VERSION))),$(PYTHON_VERSION))
LOCK := constraints/airflow-$(AIRFLOW_VERSION)-py$(PYTHON_VERSION).txt
BENCH_LOCK := constraints/airflow-$(AIRFLOW_VERSION)-py$(PYTHON_VERSION)-bench.txt
ALL_LOCKS := $(foreach p,$(LOCKED),constraints/airflow-$(word 1,$(subst /, ,$(p)))-py$(word 2,$(subst /, ,$(p))).txt) \
	constraints/airflow-3.3.2-py3.11-bench.txt
STAMP := $(VENV)/.installed-$(notdir $(LOCK))
BENCH_STAMP := $(VENV)/.installed-$(notdir $(BENCH_LOCK))
# `make bench BENCH_QUICK=1` for a short development run; `BENCH_ARGS=...` passes options through.
BENCH_ARGS ?= $(if $(BENCH_QUICK),--quick)
LINT_DIRS := airflow_provider_avatar tests dags_examples scripts benchmarks
# What `make ci` (and so .ci/run) runs, in order; each stage's wall time is printed at the end.
# `e2e-faults` (real Airflow with components SIGKILLed, ~5 min) runs once, on the pinned pair.
CI_STAGES ?= test e2e-faults test-floor test-py3.12 test-py3.13
# Bytecode is compiled at install time; without it `import airflow` takes twice as long.
export PYTHONDONTWRITEBYTECODE :=

.PHONY: venv test lint typecheck unit e2e e2e-faults suite demo bench lock test-floor $(addprefix test-py,$(PYTHONS)) \
	test-latest ci clean

$(UV):
	$(or $(shell command -v python3 2>/dev/null),python) -m pip install --user --quiet uv

# Exactly the lock, then this package on top without resolving again; `pip check` catches a stale lock.
$(STAMP): pyproject.toml $(LOCK) | $(UV)
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(VENV)
	VIRTUAL_ENV=$(VENV) $(UV) pip sync --quiet --compile-bytecode $(LOCK)
	VIRTUAL_ENV=$(VENV) $(UV) pip install --quiet --compile-bytecode --no-deps -e .
	VIRTUAL_ENV=$(VENV) $(UV) pip check --quiet
	@rm -f $(VENV)/.installed-*
	@touch $@

# The benchmarks' extra (the HTTP provider to compare against, a profiler) is not needed by `make test`.
$(BENCH_STAMP): $(STAMP) $(BENCH_LOCK)
	VIRTUAL_ENV=$(VENV) $(UV) pip sync --quiet --compile-bytecode $(BENCH_LOCK)
	VIRTUAL_ENV=$(VENV) $(UV) pip install --quiet --compile-bytecode --no-deps -e .
	@touch $@

# A pair without a committed lock (e.g. `make test AIRFLOW_VERSION=3.3.1`) is resolved on first use.
constraints/airflow-%.txt: | $(UV)
	UV=$(UV) bash constraints/compile.sh $@

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check $(LINT_DIRS)
	$(BIN)/ruff format --check $(LINT_DIRS)

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q -m "not e2e"

e2e: $(STAMP)
	$(BIN)/pytest -q -m e2e

# Real Airflow under faults (components SIGKILLed, triggerer HA, faulty polls): minutes, so not in `make test`.
e2e-faults: $(STAMP)
	$(BIN)/pytest -q -m e2e_faults tests/e2e

# The test suite alone (lint and mypy give the same answer on every pair, so `make test` runs them once).
suite: $(STAMP)
	$(BIN)/pytest -q

test: $(STAMP)
	$(BIN)/ruff check $(LINT_DIRS)
	$(BIN)/ruff format --check $(LINT_DIRS)
	$(BIN)/mypy
	$(BIN)/pytest -q

test-floor:
	$(MAKE) --no-print-directory suite AIRFLOW_VERSION=$(AIRFLOW_FLOOR) PYTHON_VERSION=$(PYTHON_OLDEST)

$(addprefix test-py,$(PYTHONS)):
	$(MAKE) --no-print-directory suite PYTHON_VERSION=$(patsubst test-py%,%,$@)

# The newest resolution of everything (Airflow included), on purpose and never locked: what a new user gets today.
test-latest: | $(UV)
	$(UV) venv --quiet --clear --python $(PYTHON) .venv-latest
	VIRTUAL_ENV=.venv-latest $(UV) pip install --quiet --compile-bytecode -e ".[dev]"
	@VIRTUAL_ENV=.venv-latest $(UV) pip freeze | grep -E '^(apache-airflow|apache-airflow-core|structlog|aiohttp|pydantic|fastapi)=='
	.venv-latest/bin/pytest -q

# Re-resolve every committed lock (keeping what still fits); `make lock UPGRADE=1` moves them all to the newest.
lock: | $(UV)
	@for f in $(ALL_LOCKS); do UV=$(UV) bash constraints/compile.sh $$f || exit 1; done

ci:
	@failed=0; report=""; \
	for stage in $(CI_STAGES); do \
		start=$$(date +%s); \
		if $(MAKE) --no-print-directory $$stage; then result=passed; else result=FAILED; failed=$$((failed + 1)); fi; \
		report="$$report$$(printf '  %-14s %-7s %5ss' $$stage $$result $$(( $$(date +%s) - start )))\n"; \
	done; \
	printf "ci stages (wall time):\n$$report"; \
	echo "stages: $$(( $(words $(CI_STAGES)) - failed )) passed, $$failed failed"; \
	test $$failed -eq 0

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

bench: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

clean:
	rm -rf .venv .venv-* .airflow-home demo-output .pytest_cache .mypy_cache .ruff_cache
