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
VARIANTS_DIR := data/variants-$(PROFILE)

.PHONY: help setup test lint reproduce data bench clean

help:
	@echo "make setup      create .venv (torch $(TORCH_VERSION), torchvision, bgrepro editable, test tools)"
	@echo "make test       run the test suite (lint + pytest)"
	@echo "make reproduce  the main job [PROFILE=tiny|smoke|full] [DATA=synthetic|in9]"
	@echo "make bench      throughput benchmarks (variant builder; training vs ImageFolder; challenge vs official)"
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
	$(BIN)/ruff check bgrepro tests scripts bench

test: setup lint
	$(BIN)/python -m pytest

# The data stage: the embedded synthetic IN-9 and its eight variants, or the official IN-9 test sets.
data: setup
ifeq ($(DATA),synthetic)
	$(BIN)/bgrepro synth --out $(SYNTH_DIR) --profile $(PROFILE) --preview
	$(BIN)/bgrepro build --source synthetic --in $(SYNTH_DIR) --out $(VARIANTS_DIR) --preview
else ifeq ($(DATA),in9)
	$(BIN)/bgrepro data fetch in9 --dest data/in9
else
	@echo "DATA=$(DATA): use DATA=synthetic (default) or DATA=in9; for your own images run 'bgrepro build --source folder' (see README)"; exit 2
endif

reproduce: data
	@echo
	@echo "Data ready (DATA=$(DATA), PROFILE=$(PROFILE))."
	@echo "The first experiments (backgrounds suffice, BG-Gap table, Mixed-Rand training) run with:"
	@echo "  $(BIN)/python scripts/first_results.py --data $(VARIANTS_DIR) --profile $(PROFILE)   (about 10 min on 2 cores)"
	@echo "Later stages of 'make reproduce', added as they land:"
	@echo "  1. the experiments above, through the book's notebooks"
	@echo "  2. adversarial backgrounds, fine-grained and benchmark-progress analyses"
	@echo "  3. Grad-CAM saliency and representer-point localization"
	@echo "  4. execute the book's notebooks with papermill and build the site into book/_build/html"

bench: data
	$(BIN)/python bench/build_throughput.py --profile $(PROFILE)
	$(BIN)/python bench/train_throughput.py --data $(VARIANTS_DIR)
	$(BIN)/python bench/challenge_throughput.py --data $(VARIANTS_DIR) --profile $(PROFILE)
	$(BIN)/python bench/saliency_throughput.py --data $(VARIANTS_DIR) --profile $(PROFILE)

clean:
	rm -rf results data/synth-* data/variants-*
