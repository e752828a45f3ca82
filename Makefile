# Every target creates .venv and installs the project into it when needed, so a fresh clone
# needs nothing but Python 3.11 and make.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: install demo test bench pictures clean

# The tool alone (editable, so the checkout's code is what runs): enough for `make demo` and for
# migrating a project. The test and benchmark extras are added only when they are needed.
$(STAMP): setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[test,bench]"
	touch $(TEST_STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m sandbox.demo

test: $(TEST_STAMP)
	$(PY) -m pytest -q tests

bench: $(TEST_STAMP)
	$(PY) -m benchmarks

# docs/report.png and docs/preview.png from a fresh demo run (needs headless Chromium).
pictures: $(STAMP)
	$(PY) -m pip install --quiet -e ".[pictures]"
	$(PY) -m sandbox.demo
	$(PY) -m sandbox.pictures

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

include deploy.mk
