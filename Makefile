# Task runner. The README's two commands are `make run` and `make test`.
.PHONY: run test lint typecheck check bench bench-quick setup

PROMPT ?= What is the capital of France?
VENV := .venv/bin

setup:
	@scripts/bootstrap.sh

## The main job: a streamed answer from the embedded local model (no key, no network).
run: setup
	@$(VENV)/lexigram-llm chat "$(PROMPT)"

## The test suite (installs redis-server and the workspace first).
test:
	@scripts/bootstrap.sh --with-redis
	LEXIGRAM_REQUIRE_REDIS=1 $(VENV)/pytest

lint: setup
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .

typecheck: setup
	$(VENV)/mypy packages/*/src

check: lint typecheck test

bench: setup
	$(VENV)/python -m bench

bench-quick: setup
	$(VENV)/python -m bench --quick
