# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= collector.toml

.PHONY: install run test lint bench clean browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/collector init --config $(CONFIG) --example collector.example.toml
	$(BIN)/collector serve --config $(CONFIG)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict anonymizer collector

# Debian's chromium for the dashboard's browser tests (tests/redteam/test_dashboard_browser.py);
# where it cannot be installed (no apt, not root) those tests skip and say why
APT_CHROMIUM := DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& { $(APT_CHROMIUM) || { apt-get update -q && $(APT_CHROMIUM); }; }; } \
		|| echo "chromium not installed: the browser tests will skip"

test: lint browser
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/ingest_bench.py

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
