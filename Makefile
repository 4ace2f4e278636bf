# Two commands do all set-up on a fresh machine:
#   make demo   -> trains with the viewer at http://127.0.0.1:8000
#   make test   -> style and type checks, then the whole test suite (installs
#                  Chromium for the page tests); what CI runs
# The inner loop, once the venv exists:
#   make format     -> ruff format + import order, in place
#   make check      -> ruff (lint, format) and pyright: seconds
#   make test-fast  -> the suite without `slow` trainings and Chromium pages
#                      (no apt, no browser): a few minutes on 2 cores
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: venv chromium osmesa demo format check lint test test-fast bench clean

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e . --config-settings editable_mode=compat
	rm -f $(VENV)/.installed-*
	touch $@

# Debian's Chromium for the page tests (Playwright drives it; it never downloads a browser).
chromium: osmesa
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium; }

# OSMesa: MuJoCo's software offscreen renderer for video export without a GPU.
osmesa:
	@ldconfig -p 2>/dev/null | grep -q libOSMesa || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q libosmesa6; }

demo: venv
	$(PY) demo/training_example.py --keep-open $(ARGS)

format: venv
	$(VENV)/bin/ruff check --select I --fix -q .
	$(VENV)/bin/ruff format -q .

# Style and types, as CI checks them: ruff (lint, format) and pyright.
check: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/pyright

lint: check

test-fast: venv check
	$(PY) -m pytest -q -p no:cacheprovider -m "not slow and not page" --durations=10 tests $(ARGS)

test: venv chromium check
	$(PY) -m pytest -q -p no:cacheprovider --durations=25 tests $(ARGS)

bench: venv
	$(PY) bench/overhead.py $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
