# The two commands of the README: `make demo` and `make test`.  Both create the project's own
# virtual environment (.venv) on first use and install ipycap into it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint bench notebooks fuzz-long clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,bench,libs]'
	touch $(STAMP)

## Open the teaching notebooks in JupyterLab, with the capsule kernel installed in .venv.
demo: $(STAMP)
	$(PY) -m ipycap.kernel install --sys-prefix
	$(PY) -m ipycap.demo

## ruff (format and lint) and the whole test suite.
test: $(STAMP) lint
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff format --check ipycap tests bench tools
	$(VENV)/bin/ruff check ipycap tests bench tools

bench: $(STAMP)
	$(PY) bench/run.py

## Re-execute the teaching notebooks and store their (normalised) outputs.
notebooks: $(STAMP)
	$(PY) -m ipycap.kernel install --sys-prefix
	$(PY) tools/run_notebooks.py --write

fuzz-long: $(STAMP)
	$(PY) bench/fuzz_long.py

clean:
	rm -rf $(VENV) .pytest_cache
