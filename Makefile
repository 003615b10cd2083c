# One-command setup and test. torch is installed first from the local CPU wheel so pip never pulls CUDA builds.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

# their declared pins conflict with numpy 2 / opacus 1.x, which they work with (see pyproject's privacy extra)
PRIVACY_NODEPS := anonymeter==1.1.0 smartnoise-synth==1.0.8 smartnoise-sql==1.0.10 mbi==1.1.0

.PHONY: setup test test-all quickstart bench

setup:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev,privacy,serve]"
	$(BIN)/python -m pip install -q --no-deps $(PRIVACY_NODEPS)
	@echo "setup done: activate with 'source $(VENV)/bin/activate', then try 'genforge quickstart'"

test:
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -m "not slow" -n 2 --dist loadfile --ignore-glob "tests/test_serve_*.py"
	$(BIN)/python -m pytest -q -m "not slow" tests/test_serve_*.py

test-all:
	$(BIN)/python -m pytest -q

quickstart:
	$(BIN)/genforge quickstart

bench:
	$(BIN)/python benchmarks/train_throughput.py
