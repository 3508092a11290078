# Two commands for a newcomer: `make report` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all

.PHONY: report test test-fast lint format bench dry-run clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Run the whole pipeline -> results/report/evaluation.html
## (synthetic extracts, or real ones with `make report RAW_DIR=/path/to/extracts`)
RAW_CONFIG = $(if $(filter command line environment,$(origin RAW_DIR)),--config 'raw_dir=$(RAW_DIR)')
report: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) $(RAW_CONFIG)

## Run the test suite (unit, property, dry-run and end-to-end tests), one worker per core;
## a test file's tests share a worker, so each end-to-end build is made once
test: $(STAMP)
	$(BIN)/python -m pytest -n auto --dist loadfile

## Unit tests only (skips the slow end-to-end tests)
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m 'not slow'

dry-run: $(STAMP)
	$(BIN)/snakemake -n --forceall

lint: $(STAMP)
	$(BIN)/ruff check src scripts tests benchmarks
	$(BIN)/ruff format --check src scripts tests benchmarks
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint

format: $(STAMP)
	$(BIN)/ruff check --fix src scripts tests benchmarks
	$(BIN)/ruff format src scripts tests benchmarks
	$(BIN)/snakefmt Snakefile workflow/rules

## Benchmarks: one table of wall time and peak memory per stage
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf results .snakemake
