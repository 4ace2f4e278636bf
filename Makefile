# Two commands do all set-up on a fresh machine:
#   make demo   -> trains with the viewer at http://127.0.0.1:8000
#   make test   -> runs the whole test suite (installs Chromium for page tests)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: venv chromium demo test bench clean

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $@

# Debian's Chromium for the page tests (Playwright drives it; it never downloads a browser).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium; }

demo: venv
	$(PY) demo/training_example.py $(ARGS)

test: venv chromium
	$(PY) -m pytest -q -p no:cacheprovider tests $(ARGS)

bench: venv
	$(PY) bench/overhead.py $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
