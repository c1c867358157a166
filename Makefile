# Every target bootstraps .venv from the committed lock, so a fresh clone needs only python3.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=

.PHONY: venv run test lint typecheck pytest lock bench drill histories clean screenshots

venv: $(STAMP)

# Reinstall only when the lock or the project metadata changed (idempotent).
$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

run: venv
	$(BIN)/bulkhead up $(ARGS)

lint: venv
	$(BIN)/ruff check contracts orchestrator workflows adapters tests bench
	$(BIN)/ruff format --check contracts orchestrator workflows adapters tests bench

typecheck: venv
	$(BIN)/mypy

pytest: venv
	$(BIN)/pytest $(ARGS)

test: lint typecheck pytest

# The console's pictures in docs/img (docs/CONSOLE.md), from the real stack and chromium.
screenshots: venv
	$(BIN)/pytest tests/console/screenshots.py -p no:cacheprovider

# Regenerate the lock after editing dependencies in pyproject.toml.
lock: venv
	$(BIN)/python -m pip install --quiet "uv==0.13.9"
	$(BIN)/uv pip compile pyproject.toml --extra test --extra lab --python-version 3.11 \
		--no-header --output-file requirements.lock

BENCHES := bench/time_to_contain.py bench/storm.py bench/policy.py bench/network.py bench/fallback.py bench/scale.py bench/front_door.py bench/cli.py

# Each prints one JSON object with its own in-run baseline; see docs/PERFORMANCE.md.
bench: venv
	@for script in $(BENCHES); do echo "# $$script" >&2; $(BIN)/python $$script || exit 1; done

# Fault drills: SIGKILL workers and APIs, restart Temporal; prints a table and JSON.
drill: venv
	$(BIN)/python bench/drills/run.py $(ARGS)

# Re-record the workflow histories the suite replays (after any change under workflows/).
histories: venv
	PYTHONPATH=.:tests $(BIN)/python tests/workflows/record_histories.py

clean:
	rm -rf $(VENV) .bulkhead .mypy_cache .pytest_cache .ruff_cache
