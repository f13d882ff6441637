# One-command set-up: every target creates .venv itself (uv, installed with pip if missing).
AIRFLOW_VERSION ?= 3.3.2
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
STAMP := $(VENV)/.installed-$(AIRFLOW_VERSION)
BENCH_STAMP := $(VENV)/.installed-bench-$(AIRFLOW_VERSION)
# `make bench BENCH_QUICK=1` for a short development run; `BENCH_ARGS=...` passes options through.
BENCH_ARGS ?= $(if $(BENCH_QUICK),--quick)
LINT_DIRS := airflow_provider_avatar tests dags_examples scripts benchmarks
# Bytecode is compiled at install time; without it `import airflow` takes twice as long.
export PYTHONDONTWRITEBYTECODE :=

.PHONY: venv test lint typecheck unit e2e e2e-faults demo bench clean

$(STAMP): pyproject.toml
	@command -v uv >/dev/null 2>&1 || [ -x "$(UV)" ] || $(PYTHON) -m pip install --user --quiet uv
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(VENV)
	VIRTUAL_ENV=$(VENV) $(UV) pip install --quiet --compile-bytecode \
		"apache-airflow==$(AIRFLOW_VERSION)" -e ".[dev]"
	@touch $@

# The benchmarks' extra (the HTTP provider to compare against, a profiler) is not needed by `make test`.
$(BENCH_STAMP): $(STAMP)
	VIRTUAL_ENV=$(VENV) $(UV) pip install --quiet --compile-bytecode \
		"apache-airflow==$(AIRFLOW_VERSION)" -e ".[dev,bench]"
	@touch $@

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

test: $(STAMP)
	$(BIN)/ruff check $(LINT_DIRS)
	$(BIN)/ruff format --check $(LINT_DIRS)
	$(BIN)/mypy
	$(BIN)/pytest -q

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

bench: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .airflow-home demo-output .pytest_cache .mypy_cache .ruff_cache
