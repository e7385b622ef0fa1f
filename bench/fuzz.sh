#!/usr/bin/env bash
# Longer fuzzing run: the same schemathesis test as the suite, with many more examples per route.
# Usage: bench/fuzz.sh [EXAMPLES]   (default 200)
set -euo pipefail
cd "$(dirname "$0")/.."
CHORUS_FUZZ_EXAMPLES="${1:-200}" .venv/bin/python -m pytest -q -p no:cacheprovider tests/test_fuzz.py
