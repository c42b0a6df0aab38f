# Two commands for a newcomer: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
# CPU machines get the pinned CPU wheel; GPU users keep (or get) their own CUDA build.
TORCH_CPU ?= torch==2.13.0
# The dashboard's browser tests drive Debian's Chromium (apt-get install chromium chromium-driver).
CHROMIUM ?= /usr/bin/chromium

.PHONY: run test test-slow fuzz lint typecheck bench clean help

help:
	@echo "make run        - set up .venv, run the example, print its run directory"
	@echo "make test       - set up the dev environment, lint, type check, run the test suite"
	@echo "make test-slow  - the whole suite including tests marked slow"
	@echo "make fuzz       - the Hypothesis tests with new random inputs, 1000 examples each"
	@echo "make bench      - install MLflow/TensorBoard/W&B/Lightning and run benchmarks/ (see BENCHMARKS.md)"

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch first, pinned on CPU machines (any other request pulls GBs of CUDA packages).
$(VENV)/.torch: | $(PY)
	@if ! $(PY) -c "import torch" >/dev/null 2>&1; then \
	  if command -v nvidia-smi >/dev/null 2>&1; then \
	    echo "installing torch (CUDA build: nvidia-smi found)"; $(PIP) install "torch>=2.3"; \
	  else echo "installing $(TORCH_CPU) (CPU build)"; $(PIP) install "$(TORCH_CPU)"; fi; \
	fi
	@touch $@

$(VENV)/.runtime: pyproject.toml $(VENV)/.torch
	$(PIP) install -e ".[torch]"
	@touch $@

$(VENV)/.dev: pyproject.toml $(VENV)/.torch
	$(PIP) install -e ".[all,dev]"
	@touch $@

run: $(VENV)/.runtime
	$(BIN)/runlab run examples/quickstart.yaml --output-dir runs

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests examples benchmarks
	$(BIN)/ruff format --check src tests examples benchmarks

typecheck: $(VENV)/.dev
	$(BIN)/mypy

test: lint typecheck
	@if [ -x "$(CHROMIUM)" ]; then \
	  echo "browser tests: on (Chromium at $(CHROMIUM))"; \
	  $(BIN)/pytest -m "not slow and not gpu" -q; \
	else \
	  echo "browser tests: SKIPPED, no Chromium at $(CHROMIUM) (apt-get install chromium chromium-driver)"; \
	  $(BIN)/pytest -m "not slow and not gpu and not browser" -q; \
	fi

test-slow: $(VENV)/.dev
	$(BIN)/pytest -q

fuzz: $(VENV)/.dev
	RUNLAB_HYPOTHESIS=fuzz $(BIN)/pytest -q -m "not slow and not gpu" tests/test_episodic.py \
	  tests/test_metrics_reference.py tests/test_expr.py tests/test_sinks.py

$(VENV)/.bench: pyproject.toml $(VENV)/.dev
	$(PIP) install -e ".[all,dev,bench]"
	@touch $@

bench: $(VENV)/.bench
	$(PY) benchmarks/bench_logging.py
	$(PY) benchmarks/bench_index.py
	$(PY) benchmarks/bench_trainer.py
	$(PY) benchmarks/bench_finance.py
	$(PY) benchmarks/bench_episodic.py
	$(PY) benchmarks/bench_tune.py
	$(PY) benchmarks/bench_status.py
	$(PY) benchmarks/bench_sinks.py
	$(PY) benchmarks/bench_ui.py
	-$(PY) benchmarks/bench_cluster.py  # needs root and Slurm's packages (see docs/clusters.md)

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
