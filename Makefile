# Task runner. The README's two commands are `make run` and `make test`.
.PHONY: run test test-local lint typecheck check bench bench-quick setup

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

## The tests that load the bundled local model (CI runs them per thread count).
LOCAL_TESTS := $(addprefix packages/lexigram-ai-llm/tests/,test_local_provider.py test_local_options.py test_cli.py test_structured_local.py)
test-local: setup
	$(VENV)/pytest -q -p no:randomly $(LOCAL_TESTS)

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
