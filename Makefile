# The two commands of the README:
#   make run   - install (first use) and run the default workflow (quickstart)
#   make test  - install (first use) and run the test suite
# Each makes its own virtual environment in .venv on first use and installs the CPU
# build of torch (a bare `torch` requirement would pull a multi-GB CUDA build).

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
TORCH := torch==2.13.0
# the compiled CPU kernels (src/lqcdml/kernels), rebuilt when their source changes
KERNELS := $(VENV)/.kernels
KERNEL_SOURCES := $(wildcard src/lqcdml/kernels/csrc/*.cpp)

.PHONY: run test clean-venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet $(TORCH) -e '.[test]'
	touch $(STAMP)

$(KERNELS): $(STAMP) $(KERNEL_SOURCES)
	$(VENV)/bin/python -m lqcdml.kernels.build
	touch $(KERNELS)

run: $(KERNELS)
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VENV)/bin/snakemake -c2

test: $(KERNELS)
	scripts/install_test_services.sh
	$(VENV)/bin/python -m pytest -n auto --dist loadfile $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
