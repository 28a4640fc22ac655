# One command to run the platform, one to run the tests; both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

BROWSER := $(VENV)/.system-packages

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Debian packages the tests use: chromium (the dashboard tests drive it through Playwright;
# no downloaded browser) and prometheus (its promtool checks the rendered alert rules).
$(BROWSER): $(STAMP)
	@command -v chromium >/dev/null && command -v promtool >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
	    chromium prometheus; }
	@command -v chromium >/dev/null || { echo "install Debian's chromium (apt-get install chromium) for the dashboard tests" >&2; exit 1; }
	touch $(BROWSER)

run: $(STAMP)  ## set up, then run the end-to-end demo on the embedded default
	$(BIN)/mlops demo

test: $(STAMP) $(BROWSER)  ## set up, then lint, type-check and run the whole test suite
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q -n 2 --dist loadfile --durations=25

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/tracking.py

clean:
	rm -rf $(VENV) mlops-data .pytest_cache .mypy_cache .ruff_cache
