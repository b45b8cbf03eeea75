# The two commands of the README:
#   make run   - install (first use) and run the default workflow (quickstart)
#   make test  - install (first use) and run the test suite
# Each makes its own virtual environment in .venv on first use and installs the CPU
# build of torch (a bare `torch` requirement would pull a multi-GB CUDA build).

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
TORCH := torch==2.13.0
# the compiled CPU kernels (src/lqcdml/kernels), rebuilt when their source or build rules
# change; built here so tests never build mid-run (an install without make builds them on
# first use: src/lqcdml/kernels/build.py)
KERNELS := $(VENV)/.kernels
KERNEL_SOURCES := $(wildcard src/lqcdml/kernels/csrc/*.cpp) src/lqcdml/kernels/build.py

.PHONY: run test lint typecheck clean-venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet $(TORCH) -e '.[test]'
	touch $(STAMP)

$(KERNELS): $(STAMP) $(KERNEL_SOURCES)
	$(VENV)/bin/python -m lqcdml.kernels.build
	touch $(KERNELS)

# byte-compile the package once: every workflow job imports it anew (about 0.2 s a job where
# the environment sets PYTHONDONTWRITEBYTECODE and nothing is cached otherwise)
BYTECODE := $(VENV)/bin/python -m compileall -q src/lqcdml > /dev/null

run: $(KERNELS)
	$(BYTECODE)
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VENV)/bin/snakemake -c2

test: $(KERNELS)
	$(BYTECODE)
	scripts/install_test_services.sh
	$(VENV)/bin/python -m pytest -n auto --dist loadfile --durations=30 $(PYTEST_ARGS)

# lint and format check ([tool.ruff] in pyproject.toml); runs in CI
lint: $(STAMP)
	$(VENV)/bin/python -m ruff check --quiet .
	$(VENV)/bin/python -m ruff format --check --quiet .

# the public API's type check ([tool.mypy] in pyproject.toml); runs in CI (.ci/run), with
# MYPY_ARGS=--no-error-summary: nothing printed when it passes
typecheck: $(STAMP)
	$(VENV)/bin/python -m mypy $(MYPY_ARGS)

# the documentation site (mkdocs.yml, docs/) into site/, warnings as errors; installs the
# docs extra into .venv on first use (MKDOCS_ARGS=--quiet: only warnings and errors)
DOCS_STAMP := $(VENV)/.docs-installed
.PHONY: docs

$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(VENV)/bin/pip install --quiet $(TORCH) -e '.[docs]'
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict -d site $(MKDOCS_ARGS)

clean-venv:
	rm -rf $(VENV)
