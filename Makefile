# bgrepro: set-up, tests and the main job. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROFILE ?= smoke
DATA ?= synthetic
# Foreground masks of the synthetic variants: grabcut (from the boxes, the paper's procedure) or exact.
FG_MASKS ?= grabcut
# The installed environment is stamped with the hash of the dependency list, so `make setup`
# reinstalls only when pyproject.toml changes.
DEPS_HASH := $(shell sha256sum pyproject.toml | cut -c1-16)
STAMP := $(VENV)/.installed-$(DEPS_HASH)
SYNTH_DIR := data/synth-$(PROFILE)
ifeq ($(DATA),synthetic)
VARIANTS_DIR := data/variants-$(PROFILE)-$(FG_MASKS)
else ifeq ($(DATA),in9)
VARIANTS_DIR := data/in9
else
VARIANTS_DIR := $(DATA)
endif
BOOK_HTML := book/_build/html
# The real-photo chapter's photos: an ImageNet-style folder (IN-9 class folders or ImageNet synset folders); empty:
# ../shared/realphotos/imagenet-val-227 when it is there.
REALPHOTOS ?=

.PHONY: help setup test fullcheck lint reproduce data book book-check lab bench bench-book bench-scale bench-gpu bench-lease clean

help:
	@echo "make setup      create .venv (torch $(TORCH_VERSION), torchvision, bgrepro editable, test tools)"
	@echo "make test       run the test suite (lint + pytest)"
	@echo "make reproduce  data, every chapter executed with papermill, the site [PROFILE=tiny|smoke|full] [DATA=synthetic|in9|PATH] [REALPHOTOS=PATH]"
	@echo "make book       render the executed chapters into $(BOOK_HTML) (no execution)"
	@echo "make book-check screenshot the site in headless Chromium; fail on a page without figures or with a traceback"
	@echo "make lab        JupyterLab on book/ (the chapters open as notebooks)"
	@echo "make fullcheck  every chapter at 224 px with the full profile's architectures on 2+2 images per class (CPU, ~15 min)"
	@echo "make bench      throughput benchmarks (variant builder; training vs ImageFolder; challenge vs official)"
	@echo "make bench-book the smoke book from a cold cache, in seconds and reference units -> bench/results/book.json"
	@echo "make bench-scale build, eval and the sampled challenge on 5k/20k/50k images: time and memory growth"
	@echo "make bench-gpu  every stage at IN-9's size on a GPU -> bench/results/gpu.json (bench/gpu.py)"
	@echo "make bench-lease one 9-minute GPU command: the challenge at 4,050 x 4,050, claims at IN-9's test size"
	@echo "make clean      remove results/ and generated data (keeps .venv)"

TORCH_VERSION := 2.14.1
TORCHVISION_VERSION := 0.29.1

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==$(TORCH_VERSION) torchvision==$(TORCHVISION_VERSION)
	$(BIN)/python -m pip install --quiet -e '.[dev,book,formats,pretrained]'
	@rm -f $(VENV)/.installed-*
	@touch $@

lint: setup
	$(BIN)/ruff check bgrepro tests scripts bench

# pytest runs on every core (pytest-xdist; each test file on one worker, so a file's shared fixtures are made once). It executes every chapter under the tiny profile (tests/test_book.py),
# builds the site from those executions and opens every page in headless Chromium (skipped where none is
# installed; .ci/run installs it), leaving the notebooks, the site and the screenshots in results/tiny-test/.
TEST_BOOK := results/tiny-test/notebooks

test: setup lint
	BGREPRO_BOOK_OUT=$(TEST_BOOK) $(BIN)/python -m pytest -n auto --dist loadfile --durations=10

# The data stage: the embedded synthetic IN-9 and its eight variants, or the official IN-9 test sets.
data: setup
ifeq ($(DATA),synthetic)
	$(BIN)/bgrepro synth --out $(SYNTH_DIR) --profile $(PROFILE) --preview
	$(BIN)/bgrepro build --source synthetic --in $(SYNTH_DIR) --out $(VARIANTS_DIR) --fg-masks $(FG_MASKS) --preview
else ifeq ($(DATA),in9)
	$(BIN)/bgrepro data fetch in9 --dest data/in9 --only test,train-original,train-mixed_rand
else
	@test -d "$(DATA)/original" || { echo "DATA=$(DATA): not a built dataset (no original/ folder); see README"; exit 2; }
endif

# The main job: data, then every chapter executed by papermill (cached records reused), then the site.
reproduce: data
	$(BIN)/python -m bgrepro.book run --profile $(PROFILE) --data $(VARIANTS_DIR) --synth $(SYNTH_DIR) \
		$(if $(REALPHOTOS),--realphotos "$(REALPHOTOS)")
	$(BIN)/python -m bgrepro.book build --profile $(PROFILE)
	@echo "The book: $(BOOK_HTML)/index.html"

book: setup
	$(BIN)/python -m bgrepro.book build --profile $(PROFILE)

book-check: setup
	$(BIN)/python -m bgrepro.book check --html $(BOOK_HTML) --shots results/$(PROFILE)/screenshots --pages all

lab: setup
	$(BIN)/jupyter lab book/

# The full profile's code path on a handful of images (CI runs it after the tests, so it never rots).
fullcheck:
	$(MAKE) reproduce PROFILE=fullcheck

bench-gpu: setup
	$(BIN)/python bench/gpu.py --out bench/results/gpu.json

# One GPU lease (one command of at most 9 minutes): IN-9's test set, the challenge at 4,050 x 4,050 in fp32,
# the claims at IN-9's test size. On the lent machine: PYTHONPATH=. python bench/gpu.py --lease --out $OUT/gpu.json
bench-lease: setup
	$(BIN)/python bench/gpu.py --lease --out bench/results/gpu-lease.json

bench: data
	$(BIN)/python bench/build_throughput.py --profile $(PROFILE)
	$(BIN)/python bench/train_throughput.py --data $(VARIANTS_DIR)
	$(BIN)/python bench/challenge_throughput.py --data $(VARIANTS_DIR) --profile $(PROFILE)
	$(BIN)/python bench/saliency_throughput.py --data $(VARIANTS_DIR) --profile $(PROFILE)
	$(BIN)/python bench/scale.py --out bench/results/scale.json

# time and peak memory of build, eval and the sampled challenge on 5k, 20k and 50k images at 64 px
# The smoke book from a cold cache (records and chapters anew; data and venv in place) in seconds and in reference
# units (the default model's training at the baseline commit, timed before and after), appended to
# bench/results/book.json. LABEL names the measurement (before, after, ...).
LABEL ?= $(shell git rev-parse --short HEAD)
bench-book: data
	$(BIN)/python bench/book.py --profile $(PROFILE) --data $(VARIANTS_DIR) --synth $(SYNTH_DIR) --label $(LABEL)

bench-scale: setup
	$(BIN)/python bench/scale.py --out bench/results/scale.json

clean:
	rm -rf results data/synth-* data/variants-*
