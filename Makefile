# One-command set-up: every target creates .venv itself (uv, installed with pip if missing).
AIRFLOW_VERSION ?= 3.3.2
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
STAMP := $(VENV)/.installed-$(AIRFLOW_VERSION)
# Bytecode is compiled at install time; without it `import airflow` takes twice as long.
export PYTHONDONTWRITEBYTECODE :=

.PHONY: venv test lint typecheck unit e2e demo clean

$(STAMP): pyproject.toml
	@command -v uv >/dev/null 2>&1 || [ -x "$(UV)" ] || $(PYTHON) -m pip install --user --quiet uv
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(VENV)
	VIRTUAL_ENV=$(VENV) $(UV) pip install --quiet --compile-bytecode \
		"apache-airflow==$(AIRFLOW_VERSION)" -e ".[dev]"
	@touch $@

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check airflow_provider_avatar tests dags_examples scripts
	$(BIN)/ruff format --check airflow_provider_avatar tests dags_examples scripts

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q -m "not e2e"

e2e: $(STAMP)
	$(BIN)/pytest -q -m e2e

test: $(STAMP)
	$(BIN)/ruff check airflow_provider_avatar tests dags_examples scripts
	$(BIN)/ruff format --check airflow_provider_avatar tests dags_examples scripts
	$(BIN)/mypy
	$(BIN)/pytest -q

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

clean:
	rm -rf $(VENV) .airflow-home demo-output .pytest_cache .mypy_cache .ruff_cache
