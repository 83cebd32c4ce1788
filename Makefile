# Two entry points for a fresh machine with only Python 3.11 and pip:
#   make demo   -> sets up the environment and runs the main job on the embedded dataset
#   make test   -> sets up the environment and runs the whole test suite
# VENV may point outside the clone (CI caches it keyed by a hash of pyproject.toml).
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
DEPS_HASH := $(shell $(PYTHON) -c "import hashlib;print(hashlib.sha256(open('pyproject.toml','rb').read()).hexdigest()[:12])")
STAMP := $(VENV)/.deps-$(DEPS_HASH)

.PHONY: setup demo test test-all bench-quick clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -e ".[all]"
	@rm -f $(VENV)/.deps-* && touch $(STAMP)

setup: $(STAMP)
	@# The editable install records this clone's path; refresh it cheaply (a cached venv may come from another clone).
	@$(PY) -m pip install --quiet --no-deps --no-build-isolation -e . >/dev/null

demo: setup
	$(VENV)/bin/forecasting demo

test: setup
	@bash scripts/ensure_chromium.sh || true
	$(PY) -m pytest -q

test-all: setup
	$(PY) -m pytest -q -m ""

clean:
	rm -rf .venv runs .pytest_cache
