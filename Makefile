# Two entry points, both from a fresh clone: `make demo` and `make test`.
# They render with Blender's `bpy` 5.0.1 wheel, which exists for Python 3.11 only (pyproject.toml installs it
# there). Without bpy, on Python 3.10-3.13: pip install -e '.[test]' and pytest -m "not blender".
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The DataLoader test needs torch; it is not in camsim[test] because PyPI's Linux x86-64 wheel is the CUDA
# build (gigabytes). `make test` (CI) installs the CPU build: from PyTorch's CPU index, or a local wheel pip
# is configured to find. `make test TORCH=` leaves torch out (the DataLoader test then skips, saying why).
TORCH ?= torch==2.13.0$(if $(filter Linux-x86_64,$(shell uname -s)-$(shell uname -m)),+cpu)
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu

.PHONY: install torch demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11) and "make demo and make test need Python 3.11 (bpy 5.0.1); without Blender, on 3.10-3.13: pip install -e .[test] and pytest -m \"not blender\"")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

torch: $(STAMP)
	@if [ -n "$(TORCH)" ] && ! $(PY) -c 'import importlib.util as u, sys; sys.exit(not u.find_spec("torch"))'; then \
		echo "installing $(TORCH) for the DataLoader test (make test TORCH= leaves it out)"; \
		$(PY) -m pip install -q --retries 0 --extra-index-url $(TORCH_INDEX) '$(TORCH)' \
			|| echo "torch could not be installed: the DataLoader test will skip"; \
	fi

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/camsim demo demo-output

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m ruff format --check src tests benchmarks

test: $(STAMP) torch
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m pytest -q
	@# Where an installed Blender is on PATH, the analytic ground-truth tests run on it too.
	@if command -v blender >/dev/null 2>&1; then \
		echo "analytic ground truth on $$(blender --version 2>/dev/null | head -1)"; \
		CAMSIM_TEST_BLENDER=$$(command -v blender) $(PY) -m pytest -q tests/test_render_groundtruth.py \
			tests/test_render_options.py; \
	fi

bench: $(STAMP)
	$(PY) benchmarks/render_overhead.py
	$(PY) benchmarks/dataset_throughput.py

clean:
	rm -rf $(VENV) demo-output logs .pytest_cache
