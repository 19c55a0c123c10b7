# Two entry points, both from a fresh clone: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11) and "camsim needs Python 3.11 (bpy 5.0.1)")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/camsim demo demo-output

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m ruff format --check src tests benchmarks

test: $(STAMP)
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
