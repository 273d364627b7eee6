# The two commands of the README:
#   make demo   — set up everything, then run the demo (2,000 events end to end, then exit)
#   make test   — set up everything, then lint, type-check and run the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_ARGS ?= --events 2000

.PHONY: setup prereqs kafka demo demo-live test test-fast test-cluster soak lint typecheck lock clean

prereqs:
	@bash deploy/local/prereqs.sh
	@bash deploy/local/compose-plugin.sh

# Everything comes from the lock (hash-checked), then the project itself without resolving again.
$(VENV)/.installed: requirements-dev.txt pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --require-hashes --no-deps -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

# Refresh the locks on purpose (after changing a range in pyproject.toml): runtime, then dev on top.
lock:
	$(PY) -m piptools compile -q --generate-hashes --strip-extras --allow-unsafe --no-emit-find-links --extra build \
	    -o requirements.txt pyproject.toml
	$(PY) -m piptools compile -q --generate-hashes --strip-extras --allow-unsafe --no-emit-find-links --extra build --extra dev \
	    -c requirements.txt -o requirements-dev.txt pyproject.toml

kafka: prereqs $(VENV)/.installed
	@$(PY) -c "from techne.local import fetch_jars; print('kafka jars:', fetch_jars())"

setup: prereqs $(VENV)/.installed kafka

demo: setup
	$(VENV)/bin/techne demo $(DEMO_ARGS)

demo-live: setup
	$(VENV)/bin/techne demo

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy

test: setup lint typecheck
	$(PY) -m pytest -q -p no:cacheprovider --durations=25 -rs

# The unit tests alone (no broker, no chDB): seconds, for the edit-test loop.
test-fast: $(VENV)/.installed
	$(PY) -m pytest -q -p no:cacheprovider tests/unit

# The three-node replicated cluster fault test alone (part of `make test` too): leaders SIGKILLed
# under load, replication factor 3, min.insync.replicas=2 (deploy/README.md, replicated cluster).
test-cluster: setup
	$(PY) -m pytest -q -p no:cacheprovider -m cluster tests/faults/test_cluster.py

soak: setup  ## the live pipeline for SOAK_MINUTES (default 30): RSS of every process, slope
	$(VENV)/bin/techne bench soak --minutes $(or $(SOAK_MINUTES),30)

clean:
	rm -rf .techne $(VENV)
