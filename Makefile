# modelyard — the two commands: `make run` and `make test`.
# TORCH_SPEC pins the torch build; the default is the CPU wheel that lies on the dev machines' disk.
# On a Mac or a CUDA box: make run TORCH_SPEC='torch==2.13.0' (or any build that fits the machine).
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck contracts bench host install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[dev]" "$(TORCH_SPEC)"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/modelyard serve

host: $(STAMP)
	$(BIN)/modelyard host

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

contracts: $(STAMP)
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python benchmarks/trainer_overhead.py
	$(BIN)/python benchmarks/features.py
	$(BIN)/python benchmarks/api_overhead.py
	$(BIN)/python benchmarks/poll_load.py
	$(BIN)/python benchmarks/handoff.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
