# The two commands of the README:
#   make demo   — set up everything, then run the demo (2,000 events end to end, then exit)
#   make test   — set up everything, then lint, type-check and run the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_ARGS ?= --events 2000

.PHONY: setup prereqs kafka demo demo-live test lint typecheck clean

prereqs:
	@bash deploy/local/prereqs.sh
	@bash deploy/local/compose-plugin.sh

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

kafka: prereqs $(VENV)/.installed
	@$(PY) -c "from techne.local import fetch_jars; print('kafka jars:', fetch_jars())"

setup: prereqs $(VENV)/.installed kafka

demo: setup
	$(VENV)/bin/techne demo $(DEMO_ARGS)

demo-live: setup
	$(VENV)/bin/techne demo

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy

test: setup lint typecheck
	$(PY) -m pytest -q -p no:cacheprovider --durations=25

clean:
	rm -rf .techne $(VENV)
