# The commands of the README: `make demo` (the main job), `make test` (everything, as CI runs it) and
# `make test-fast` (the tests not marked slow).
# Each creates .venv when missing, installing with constraints.txt (torch==2.13.0, the CPU wheel).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed-stamp

.PHONY: demo test test-fast venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip -c constraints.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/specml demo

# two pytest workers (xdist), a test file per worker at a time: its module fixtures (trained homes) are made once
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile

test-fast: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile -m "not slow"

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
