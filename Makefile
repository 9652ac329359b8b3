# bgrepro: set-up, tests and the main job. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROFILE ?= smoke
DATA ?= synthetic
# The installed environment is stamped with the hash of the dependency list, so `make setup`
# reinstalls only when pyproject.toml changes.
DEPS_HASH := $(shell sha256sum pyproject.toml | cut -c1-16)
STAMP := $(VENV)/.installed-$(DEPS_HASH)
SYNTH_DIR := data/synth-$(PROFILE)

.PHONY: help setup test lint reproduce data preview clean

help:
	@echo "make setup      create .venv (torch $(TORCH_VERSION), torchvision, bgrepro editable, test tools)"
	@echo "make test       run the test suite (lint + pytest)"
	@echo "make reproduce  the main job [PROFILE=tiny|smoke|full] [DATA=synthetic]"
	@echo "make clean      remove results/ and generated data (keeps .venv)"

TORCH_VERSION := 2.14.1
TORCHVISION_VERSION := 0.29.1

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==$(TORCH_VERSION) torchvision==$(TORCHVISION_VERSION)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

lint: setup
	$(BIN)/ruff check bgrepro tests scripts

test: setup lint
	$(BIN)/python -m pytest

data: setup
ifeq ($(DATA),synthetic)
	$(BIN)/bgrepro synth --out $(SYNTH_DIR) --profile $(PROFILE) --preview
else
	@echo "DATA=$(DATA): only the embedded synthetic data is wired in so far (official IN-9 and your own folders come with the variant builder)"; exit 2
endif

reproduce: data
	@echo
	@echo "Dataset ready: $(SYNTH_DIR) (preview: $(SYNTH_DIR)/preview.png, habitats: $(SYNTH_DIR)/habitats.png)."
	@echo "Later stages of 'make reproduce', added as they land:"
	@echo "  1. build the eight IN-9 variants of the data (bgrepro build)"
	@echo "  2. train and evaluate the models, BG-Gap (bgrepro train / eval)"
	@echo "  3. adversarial backgrounds, fine-grained and benchmark-progress analyses"
	@echo "  4. Grad-CAM saliency and representer-point localization"
	@echo "  5. execute the book's notebooks with papermill and build the site into book/_build/html"

clean:
	rm -rf results data/synth-*
