# Two commands for a fresh machine:
#   make demo   # set up .venv and run the demo (trains a small HRM on the CPU, ~10 minutes)
#   make test   # set up .venv with the dev extras and the browser, and run the whole test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install -c constraints.txt

.PHONY: demo test clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip

# The package alone: enough for the demo, training and evaluation.
$(VENV)/.installed: pyproject.toml constraints.txt | $(PY)
	$(PIP) -e .
	touch $@

# With the dev extras: the ports (ONNX, MLIR/IREE, MLX), loggers, pytest and Playwright.
$(VENV)/.installed-dev: pyproject.toml constraints.txt | $(PY)
	$(PIP) -e ".[dev]"
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/hrm demo

test: $(VENV)/.installed-dev
	bash scripts/install-browser.sh
	$(PY) -m pytest

clean:
	rm -rf $(VENV) build src/*.egg-info
