# Two commands on a fresh machine:
#   make repro   set up .venv, then run the DVC pipeline for what params.yaml's `variants` lists
#                (`dvc repro summarize`: a source not listed, e.g. google/elmo/3 offline, is never built)
#   make test    set up .venv with the test extras, then run the test suite
# With an NVIDIA GPU, add GPU=1 (e.g. `make repro GPU=1`): installs TensorFlow's CUDA build.
VENV ?= .venv
BIN := $(VENV)/bin
comma := ,
EXTRAS := test$(if $(GPU),$(comma)gpu)
INSTALLED := $(BIN)/.installed-$(EXTRAS)
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: repro test clean-venv

$(INSTALLED): pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $@

repro: $(INSTALLED)
	dvc repro summarize

test: $(INSTALLED)
	python -m pytest

clean-venv:
	rm -rf $(VENV)
