# One entry point for setup, the demo, the tests and the CUDA compile check.
# Every target creates .venv when it is missing and installs into it; nothing touches the system Python.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup demo test test-slow test-cuda cuda-check bench help-docs clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-assets.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -r requirements-assets.txt
	touch $(STAMP)

# The main job on the embedded demo data (phantom fundus photos): both papers end to end, one HTML index (docs/demo.md).
demo: $(STAMP)
	$(PY) -m fundus.demo --outdir=demo-out

# The default test tier: CPU only, no network, well under 15 minutes on 2 cores.
test: $(STAMP)
	$(PY) -m pytest -m "not slow and not cuda" --durations=20 -q --timeout=120

test-slow: $(STAMP)
	RUN_SLOW=1 $(PY) -m pytest -m "slow" --durations=20 -q --timeout=1800

test-cuda: $(STAMP)
	$(PY) -m pytest -m "cuda" --durations=20 -q --timeout=1800

# Compile every CUDA kernel with nvcc (no GPU needed); fails on any error or unjustified warning.
cuda-check: $(STAMP)
	CUDA_HOME=$${CUDA_HOME:-/usr/local/cuda} TORCH_CUDA_ARCH_LIST=$${TORCH_CUDA_ARCH_LIST:-8.0;9.0} \
		$(PY) -m torch_utils.ops.compile_check

# Regenerate the committed --help texts under docs/ (tests compare them with the live CLIs).
help-docs: $(STAMP)
	$(PY) -m tests.support.write_help_docs

clean:
	rm -rf $(VENV) .pytest_cache
