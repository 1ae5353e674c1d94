# The two commands of the README: `make serve` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install model serve test quality bench soak clean

$(BIN)/.installed: setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --constraint constraints.txt --editable '.[test]'
	touch $@

install: $(BIN)/.installed

model: install  ## bring the registry's schema up to date, then train the default model unless there is one
	$(BIN)/coe-template db upgrade
	$(BIN)/coe-template train --if-missing

serve: model  ## install, train if needed, serve on :8000
	$(BIN)/gunicorn --config config/gunicorn.py wsgi:app

test: install  ## the whole test suite
	$(BIN)/python -m pytest

quality: install  ## the README's quality figures, measured on the shared real dataset
	$(BIN)/python bench/quality.py

$(BIN)/.bench: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet --constraint constraints.txt --editable '.[test,bench]'
	touch $@

bench: $(BIN)/.bench  ## the README's performance figures (needs wrk: apt-get install wrk, and PostgreSQL)
	$(BIN)/python bench/serving.py
	$(BIN)/python bench/batch.py --items 100000 --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
	$(BIN)/python bench/realtime_under_batch.py --items 100000

soak: install  ## 16 connections, 60 s of mixed traffic with a promotion and a rollback: 0 unexpected answers
	$(BIN)/python bench/soak.py --seconds 60 --connections 16

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
