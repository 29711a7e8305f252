# Feature Store Lab: `make run` does the main job, `make test` runs the kit's own tests.
# Both start with `make install`, which is a no-op once done.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install system-packages run test lint bench mutants clean help

help:
	@echo "make run      set up everything, generate data, set up the Feast repo, grade exercises/"
	@echo "make test     run the kit's own test suite"
	@echo "make install  create .venv and install the kit (and bubblewrap, redis-server when root)"
	@echo "make lint     ruff lint and format check"
	@echo "make bench    the grader's speed figures (JSON lines)"
	@echo "make mutants SLUG=ex2_pit_join   mutation-test one exercise's suites (slow, niced)"

install: $(STAMP) system-packages

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

system-packages:
	@sh scripts/system-packages.sh

run: install
	$(BIN)/grade setup
	$(BIN)/grade check

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/grade bench

# One exercise at a time: each mutant is a full grading run, and the machine may be shared.
mutants: install
	@test -n "$(SLUG)" || { echo "usage: make mutants SLUG=<exercise slug>"; exit 2; }
	nice -n 19 $(BIN)/grade verify --mutants $(SLUG)

lint: install
	$(BIN)/ruff check grader tests exercises solutions feature_repo
	$(BIN)/ruff format --check grader tests exercises solutions feature_repo

clean:
	rm -rf $(VENV) data/*.parquet data/fraud data/generated.json feature_repo/data
