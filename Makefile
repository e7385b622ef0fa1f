# `make serve` and `make test` do all set-up on a fresh machine (see README).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.chorus-installed
LOCK := requirements.lock
GPU_LOCK := requirements-gpu.lock
# Where the CPU build of torch 2.13.0 lies on this kind of machine (PyPI's torch is CUDA-built).
TORCH_WHEELS ?= /opt/wheels
UV_COMPILE = $(VENV)/bin/uv pip compile --generate-hashes --python-version 3.11 \
	--python-platform x86_64-manylinux_2_28 --no-header

.PHONY: serve test lint install lock browser-deps test-deps

# Everything comes from the lock: exact versions, every transitive package, sha256-checked.
# --no-deps: the lock already is the whole tree (and keeps resemblyzer's obsolete deps out).
$(STAMP): $(LOCK) pyproject.toml Makefile scripts/install_kokoro_voices.py scripts/install_vocoder.py
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --require-hashes --no-deps -r $(LOCK)
	$(PY) -m pip install --no-deps --no-build-isolation -e .
	$(PY) scripts/install_kokoro_voices.py
	$(PY) scripts/install_vocoder.py
	$(PY) scripts/lock_check.py --prune
	touch $(STAMP)

install: $(STAMP)

# Regenerates both locks from pyproject.toml (needs the registries; run on this kind of machine).
# The GPU lock takes PyPI's CUDA torch and every other version from the CPU lock.
lock: $(STAMP)
	$(UV_COMPILE) pyproject.toml --extra dev --extra gpu --find-links $(TORCH_WHEELS) -o $(LOCK).tmp
	# resemblyzer declares obsolete deps (`typing`, `webrtcvad` needing a compiler): locked alone.
	echo 'resemblyzer==0.1.4' | $(UV_COMPILE) - --no-deps >> $(LOCK).tmp
	grep -E '^[A-Za-z0-9]' $(LOCK).tmp | sed 's/ \\$$//' | grep -v '^torch==' > $(VENV)/gpu-constraints.txt
	$(UV_COMPILE) pyproject.toml --extra gpu -c $(VENV)/gpu-constraints.txt -o $(GPU_LOCK).tmp
	echo 'resemblyzer==0.1.4' | $(UV_COMPILE) - --no-deps >> $(GPU_LOCK).tmp
	mv $(LOCK).tmp $(LOCK) && mv $(GPU_LOCK).tmp $(GPU_LOCK)

serve: $(STAMP)
	$(VENV)/bin/chorus serve

# Headless Chromium for the console's browser tests (tests/test_console.py).
browser-deps:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y --no-install-recommends chromium)

# espeak-ng speaks the target speakers of the voice-cloning tests (tests/test_cloning.py).
test-deps:
	command -v espeak-ng >/dev/null || (apt-get update && apt-get install -y --no-install-recommends espeak-ng)

# Two pytest-xdist workers, a test file each at a time (a file's module fixtures, e.g. a live
# server, stay in one process): the suite alone kept about 1.1 of 2 cores busy. Redis databases
# are per worker (tests/plugins/services.py); Postgres databases, ports and folders per test.
PYTEST_ARGS ?= -n 2 --dist loadfile
# pytest's exit 5 (no tests collected) must not pass silently.
test: $(STAMP) browser-deps test-deps
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

# The same checks run inside the suite (tests/test_code_rules.py), so CI holds the code to them.
lint: $(STAMP)
	$(VENV)/bin/ruff check app tests bench migrations scripts
	$(VENV)/bin/ruff format --check app tests bench migrations scripts
	$(VENV)/bin/mypy
	$(PY) scripts/check_architecture.py
