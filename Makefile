# `make serve` and `make test` do all set-up on a fresh machine (see README).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.chorus-installed

.PHONY: serve test lint install browser-deps test-deps

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --upgrade pip 'setuptools<81' wheel
	# torch first, exactly 2.13.0: the local CPU build; any other version pulls CUDA.
	$(PY) -m pip install torch==2.13.0
	$(PY) -m pip install -e '.[dev]'
	# resemblyzer declares obsolete deps (`typing`, `webrtcvad` needing a compiler): install it alone.
	$(PY) -m pip install --no-deps resemblyzer==0.1.4
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(VENV)/bin/chorus serve

# Headless Chromium for the console's browser tests (tests/test_console.py).
browser-deps:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y --no-install-recommends chromium)

# espeak-ng speaks the target speakers of the voice-cloning tests (tests/test_cloning.py).
test-deps:
	command -v espeak-ng >/dev/null || (apt-get update && apt-get install -y --no-install-recommends espeak-ng)

# pytest's exit 5 (no tests collected) must not pass silently.
test: $(STAMP) browser-deps test-deps
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

lint: $(STAMP)
	$(VENV)/bin/ruff check app workers tests bench migrations
