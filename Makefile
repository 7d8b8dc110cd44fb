# Every target creates .venv when missing and installs what it needs: a fresh machine needs only python3.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint types pytest other-pythons docs bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/gearshift demo

test: lint types pytest other-pythons

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples

types: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

# The suite on every other supported Python this machine has, each in a fresh venv (noxfile.py);
# a version it lacks is skipped with a message.
other-pythons: $(STAMP)
	$(BIN)/nox --python $$($(BIN)/python noxfile.py)

# The documentation site (docs/, mkdocs.yml) into site/; --strict fails on any warning, a broken
# link or anchor, or an API name that does not resolve.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# The measurements: auto's judgement of real work (tests marked `measures`), then each question.
bench: $(STAMP)
	$(BIN)/pytest -m measures
	for script in bench/*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .nox build dist site src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
