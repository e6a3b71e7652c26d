# The two commands of the README: `make run` (the study, quick profile) and `make test`.
# Both install what they need first and are safe to run again.
PYTHON ?= python3
PROFILE ?= quick
# Real face sets: the shared copy beside the checkout if there is one, else ./data.
FACELIB_DATA ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),$(abspath data))
export FACELIB_DATA

.PHONY: install run test test-wheel unit notebooks docs browser bench gpu-check clean-reports

install:
	$(PYTHON) -m pip install -q -e '.[dev,cluster,tensorboard]'

run: install
	$(PYTHON) -m facelib run --profile $(PROFILE)

# The notebooks share one scratch run folder, so later ones reuse earlier checkpoints.
test: install docs browser test-wheel
	FACELIB_RUN_DIR=$$(mktemp -d) $(PYTHON) -m pytest tests notebooks --nbval-lax -p no:cacheprovider

# The API reference (pdoc) into docs/api/, failing on a warning or a broken cross-reference (< 1 min).
docs: install
	$(PYTHON) docs/build_api.py docs/api

# tests/test_browser.py drives Debian's chromium through Playwright: installed here when this
# machine can (root with apt-get), otherwise one line says why that test will be skipped.
browser:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "make: installing Debian's chromium for tests/test_browser.py"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium \
	    >/dev/null) || echo "make: apt-get could not install chromium, so tests/test_browser.py will be skipped"; \
	else echo "make: no chromium on PATH and no root apt-get to install it, so tests/test_browser.py will be skipped (install chromium to run it)"; fi

# The wheel, installed (not editable) in a fresh venv, used from outside the checkout (~1 min).
test-wheel:
	PYTHON=$(PYTHON) .ci/wheel_smoke.sh

unit: install
	$(PYTHON) -m pytest tests

notebooks: install
	FACELIB_RUN_DIR=$$(mktemp -d) $(PYTHON) -m pytest notebooks --nbval-lax

# Every benchmark but the GPU check, which needs CUDA (`make gpu-check`).
bench: install
	for b in benchmarks/*.py; do [ $$b = benchmarks/gpu_check.py ] || $(PYTHON) $$b || exit 1; done

# On a machine with a GPU: CUDA tests, precisions, zoo from scratch (< 8 min); writes benchmarks/results/gpu_check.*
gpu-check: install
	$(PYTHON) benchmarks/gpu_check.py
