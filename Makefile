# One-command setup and test. torch is installed first from the local CPU wheel so pip never pulls CUDA builds.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup test test-all quickstart bench

setup:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev,serve]"
	@echo "setup done: activate with 'source $(VENV)/bin/activate', then try 'genforge quickstart'"

test:
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -m "not slow"

test-all:
	$(BIN)/python -m pytest -q

quickstart:
	$(BIN)/genforge quickstart

bench:
	$(BIN)/python benchmarks/train_throughput.py
