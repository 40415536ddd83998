# The two commands of the quick start: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: install data demo test lint bench clean

# The environment is rebuilt when pyproject.toml changes; torch comes from the pinned release.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

data: install
	$(BIN)/grade data fetch

demo: data
	$(BIN)/grade list
	$(BIN)/python bench/reference.py --quick

lint: install
	$(BIN)/ruff check grader reference tests bench

test: lint
	$(BIN)/python -m pytest

bench: data
	$(BIN)/python bench/reference.py
	$(BIN)/python bench/minibatch_epoch.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
