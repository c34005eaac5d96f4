# netweave — the two commands a new user needs are `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-unit lint format bench system-deps kube-apiserver clean help

help:
	@echo "make run     create .venv, install, start the gateway on http://127.0.0.1:8080"
	@echo "make test    install everything the tests need (system packages too), run the suite"
	@echo "make lint    ruff (lint + format check) and mypy --strict"
	@echo "make bench   load benchmarks on loopback (see bench/README.md)"

$(STAMP): pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e '.[test,lint]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/netweave serve

system-deps:
	scripts/install-system-deps

# The test kube-apiserver: built from Debian's source package once per machine, cached
# in ~/.cache/netweave (a no-op when cached).
kube-apiserver:
	scripts/kube-apiserver.sh build

test: $(STAMP) system-deps kube-apiserver
	$(BIN)/python -m pytest

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: $(STAMP) system-deps kube-apiserver
	$(BIN)/python bench/run.py
	$(BIN)/python bench/secured.py
	$(BIN)/python bench/kube_scale.py
	$(BIN)/python bench/notifications.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis .bench
