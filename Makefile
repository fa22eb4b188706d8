# Two commands on a fresh machine:
#   make repro   set up .venv, then run the DVC pipeline (`dvc repro`)
#   make test    set up .venv with the test extras, then run the test suite
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: repro test clean-venv

$(BIN)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

repro: $(BIN)/.installed
	dvc repro

test: $(BIN)/.installed
	python -m pytest

clean-venv:
	rm -rf $(VENV)
