# Two commands do all the set-up on a fresh machine:
#   make lab    virtual environment + JupyterLab on notebooks/ (127.0.0.1)
#   make test   the same environment + the system programs the tests need + the whole suite
# `make bench` measures notebook_workflows and its peers side by side (bench/RESULTS.md).

# Python 3.12+ when the machine has it: its tasks start eagerly, which keeps a step's overhead
# at a few microseconds (3.10 and 3.11 work too, about 12 µs a step slower).
PYTHON ?= $(shell for p in python3.12 python3.13 python3; do \
	  $$p -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null && { echo $$p; break; }; \
	done)
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8888

# program:debian-package pairs, installed with apt-get when missing and we are root.
LAB_PROGRAMS  := dot:graphviz
# Debian keeps initdb and pg_ctl in /usr/lib/postgresql/<version>/bin, off PATH: looked for there too.
TEST_PROGRAMS := dot:graphviz redis-server:redis-server chromium:chromium \
	initdb:postgresql pg_ctl:postgresql

.PHONY: lab test bench lint format system-lab system-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install whenever pyproject.toml changes, so `make test` also updates an old environment.
$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $@

define install_programs
	@missing=""; \
	for pair in $(1); do \
	  prog=$${pair%%:*}; pkg=$${pair##*:}; \
	  command -v $$prog >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/$$prog >/dev/null 2>&1 || \
	    case " $$missing " in *" $$pkg "*) ;; *) missing="$$missing $$pkg";; esac; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing system packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "note: missing system packages:$$missing (install them with your package manager; their tests skip meanwhile)"; \
	  fi; \
	fi
endef

system-lab:
	$(call install_programs,$(LAB_PROGRAMS))

system-test:
	$(call install_programs,$(TEST_PROGRAMS))

lab: system-lab $(VENV)/.installed-test
	$(BIN)/jupyter lab --no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port=$(PORT) \
	  --ServerApp.root_dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

# As root every system program was installed above, so a skipped test means a broken set-up:
# NOTEBOOK_WORKFLOWS_STRICT=1 makes skips fail there.
STRICT := $(if $(filter 0,$(shell id -u)),1,0)

test: system-test $(VENV)/.installed-test
	$(BIN)/ruff check notebook_workflows tests bench
	$(BIN)/ruff format --check notebook_workflows tests bench
	$(BIN)/mypy
	NOTEBOOK_WORKFLOWS_STRICT=$(STRICT) $(BIN)/python -m pytest

# Re-execute every notebook in place, so the outputs saved in them (what GitHub shows, what nbval
# compares) are today's. In file-name order: 06b resumes the run that 06a leaves behind.
.PHONY: notebooks
notebooks: system-lab $(VENV)/.installed-test
	$(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	  --ExecutePreprocessor.timeout=120 --ExecutePreprocessor.record_timing=False \
	  notebooks/*.ipynb

bench: system-test $(VENV)/.installed-bench
	$(BIN)/python bench/run.py

lint: $(VENV)/.installed-test
	$(BIN)/ruff check notebook_workflows tests bench
	$(BIN)/ruff format --check notebook_workflows tests bench
	$(BIN)/mypy

format: $(VENV)/.installed-test
	$(BIN)/ruff format notebook_workflows tests bench
	$(BIN)/ruff check --fix notebook_workflows tests bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis
