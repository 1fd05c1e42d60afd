# Runledger developer targets. Everything runs from a local virtualenv ($(VENV)).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
BENCH ?=
PY_PACKAGES := runledger streams api projections

.PHONY: install ui run test test-slow bench lint clean

install: $(VENV)/.installed

# (Re)install when pyproject.toml changes. Falls back to a pip-less venv + the
# system pip when ensurepip is missing (Debian without python3-venv).
$(VENV)/.installed: pyproject.toml
	@if [ ! -x $(BIN)/python ]; then \
		$(PYTHON) -m venv $(VENV) || { \
			rm -rf $(VENV) && $(PYTHON) -m venv --without-pip $(VENV) && \
			$(PYTHON) -m pip --python $(BIN)/python install pip; }; \
	fi
	$(BIN)/python -m pip install -e '.[dev]'
	@touch $@

# The page's npm packages (ui/package.json), exactly as ui/package-lock.json pins them.
ui: ui/node_modules/.installed

ui/node_modules/.installed: ui/package-lock.json
	@command -v npm >/dev/null || { echo "npm is needed for the page's packages: apt-get install nodejs npm"; exit 1; }
	cd ui && npm ci --no-audit --no-fund
	@touch $@

run: $(VENV)/.installed ui
	$(BIN)/runledger run

test: $(VENV)/.installed ui
	$(BIN)/pytest tests/unit tests/integration tests/e2e -m 'not slow' -q

# Exit code 5 (no tests collected) counts as success.
test-slow: $(VENV)/.installed ui
	@rc=0; $(BIN)/pytest -m slow -q || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "no slow tests collected"; exit 0; fi; exit $$rc

# make bench            -> every benchmarks/*.py (not _*.py / __init__.py helpers)
# make bench BENCH=name -> benchmarks/name.py
bench: $(VENV)/.installed
	@if [ -n "$(BENCH)" ]; then \
		$(BIN)/python benchmarks/$(BENCH).py; \
	else \
		for f in benchmarks/*.py; do \
			case "$$(basename $$f)" in _*) continue;; esac; \
			echo "== $$f"; $(BIN)/python "$$f" || exit $$?; \
		done; \
	fi

lint: $(VENV)/.installed
	$(BIN)/ruff check $(PY_PACKAGES) tests
	$(BIN)/mypy $(PY_PACKAGES)

clean:
	rm -rf $(VENV) ui/node_modules .mypy_cache .pytest_cache .ruff_cache build *.egg-info
	find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +
