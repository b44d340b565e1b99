# modelyard — the two commands: `make run` and `make test`.
# TORCH_SPEC pins the torch build; the default is the CPU wheel that lies on the dev machines' disk.
# On a Mac or a CUDA box: make run TORCH_SPEC='torch==2.13.0' (or any build that fits the machine).
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run serve test lint typecheck contracts bench bench-ray host install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[dev]" "$(TORCH_SPEC)"
	touch $(STAMP)

install: $(STAMP)

# The backend on 127.0.0.1:8000 and one host service on 127.0.0.1:5002, sharing a secret generated once
# into var/shared-secret (never committed). Ctrl-C stops both.
run: $(STAMP)
	@mkdir -p var
	@test -s var/shared-secret || $(BIN)/python -c "import secrets; print(secrets.token_hex(32))" > var/shared-secret
	@export MODELYARD_SHARED_SECRET="$$(cat var/shared-secret)"; \
	$(BIN)/modelyard host --work-dir var/host & host_pid=$$!; \
	trap 'kill $$host_pid 2>/dev/null; wait $$host_pid 2>/dev/null' EXIT INT TERM; \
	MODELYARD_HOSTS="$${MODELYARD_HOSTS:-http://127.0.0.1:5002}" $(BIN)/modelyard serve

# Only the backend (local mode), or only a host service (run this one on the GPU machine).
serve: $(STAMP)
	$(BIN)/modelyard serve

host: $(STAMP)
	$(BIN)/modelyard host

# PostgreSQL repository tests run whenever a server answers on 127.0.0.1:5432 (MODELYARD_TEST_POSTGRES_URL
# overrides it); CI sets MODELYARD_REQUIRE_SERVICES=1 so a missing PostgreSQL or Chromium fails, not skips.
PG_PROBE := import socket; socket.create_connection(("127.0.0.1", 5432), timeout=1)
test: $(STAMP)
	@if [ -z "$$MODELYARD_TEST_POSTGRES_URL" ] && $(BIN)/python -c '$(PG_PROBE)' 2>/dev/null; then \
	  export MODELYARD_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:5432/test"; fi; \
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
	$(BIN)/python benchmarks/request_cpu.py
	$(BIN)/python benchmarks/handoff.py
	$(BIN)/python benchmarks/handoff.py --backend --sizes 45
	$(BIN)/python benchmarks/command_overhead.py
	$(BIN)/python benchmarks/tabular_baselines.py
	$(BIN)/python benchmarks/host_overhead.py
	$(BIN)/python benchmarks/checkpoint_cost.py
	$(BIN)/python benchmarks/sweep_overhead.py
	$(BIN)/python benchmarks/sweep_view_queries.py

# Ray mode against a local Ray cluster the benchmark starts and stops (minutes).
bench-ray: $(STAMP)
	$(BIN)/python benchmarks/ray_overhead.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
