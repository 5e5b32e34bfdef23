# hand_pose_ros: the two set-up commands of the README.
#   make demo  - run the tracker end to end on the embedded default input
#   make test  - lint, type-check and run the tests
# Both create or reuse .venv and install the pinned set (requirements.txt) first; a stamp
# file makes the second run quick when nothing changed.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
INSTALL_INPUTS := requirements.txt requirements-dev.txt hand_pose_ros/setup.py scripts/install.sh
PYTEST_ARGS ?=

.PHONY: all demo test lint typecheck pytest install clean

all: test

install: $(STAMP)

$(STAMP): $(INSTALL_INPUTS)
	PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/install.sh
	touch $@

demo: $(STAMP)
	@echo "make demo arrives with the tracker issue; until then the tests (make test) exercise the core." >&2
	@exit 2

lint: $(STAMP)
	$(VENV)/bin/ruff check hand_pose_ros

typecheck: $(STAMP)
	$(VENV)/bin/mypy

pytest: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
