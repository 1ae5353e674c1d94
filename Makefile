# The two commands of the README: `make serve` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install model serve test lint lint-spec docs quality bench soak mutate image clean

$(BIN)/.installed: setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --constraint constraints.txt --editable '.[test]'
	touch $@

install: $(BIN)/.installed

# The batch engines' extras (Ray Data, PySpark: a few hundred MB) for their tests only: `make serve` needs none.
$(BIN)/.engines: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet --constraint constraints.txt --editable '.[test,ray,spark]'
	touch $@

model: install  ## bring the registry's schema up to date, then train the default model unless there is one
	$(BIN)/coe-template db upgrade
	$(BIN)/coe-template train --if-missing

serve: model  ## install, train if needed, serve on :8000
	$(BIN)/gunicorn --config config/gunicorn.py wsgi:app

# Two processes (pytest-xdist), each test file whole in one of them (its module-scoped servers start once).
test: $(BIN)/.engines  ## the whole test suite
	$(BIN)/python -m pytest -n 2 --dist loadfile

lint: $(BIN)/.engines  ## ruff's linter, mypy, the import contracts (setup.cfg), then ruff's formatter in check mode
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/ruff format --check .

# The spec's linters, at the versions .ci/node/package-lock.json pins (npm ci: never a global install).
NODE_BIN := .ci/node/node_modules/.bin
REDOCLY := REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true $(NODE_BIN)/redocly

$(NODE_BIN)/.installed: .ci/node/package.json .ci/node/package-lock.json
	cd .ci/node && npm ci --no-audit --no-fund
	touch $@

lint-spec: install $(NODE_BIN)/.installed  ## openapi-spec-validator, Spectral and Redocly on the spec: no error, no warning
	$(BIN)/openapi-spec-validator openapi/spec.yaml
	$(NODE_BIN)/spectral lint --fail-severity=warn openapi/spec.yaml
	$(REDOCLY) lint --format=stylish
	@# Redocly exits non-zero on errors only: a warning fails here too.
	@$(REDOCLY) lint --format=json 2>/dev/null | $(BIN)/python -c \
	  'import json, sys; t = json.load(sys.stdin)["totals"]; sys.exit(f"redocly: {t}" if t["warnings"] else 0)'

$(BIN)/.docs: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet --constraint constraints.txt --editable '.[test,docs]'
	touch $@

# Zensical reads mkdocs.yml; --strict: a link to a missing page or heading fails the build.
docs: $(BIN)/.docs  ## the docs site (docs/, mkdocs.yml) into build/site, built strictly and offline
	$(BIN)/zensical build --strict --clean

quality: install  ## the quality figures of docs/quality.md, measured on the shared real dataset
	$(BIN)/python bench/quality.py

$(BIN)/.bench: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet --constraint constraints.txt --editable '.[test,bench]'
	touch $@

# MLflow for bench/serving.py's comparison, in a virtual environment of its own (not a dependency),
# with the same scikit-learn as ours.
.venv-mlflow/bin/mlflow: $(BIN)/.installed
	$(PYTHON) -m venv .venv-mlflow
	.venv-mlflow/bin/python -m pip install --quiet mlflow "scikit-learn==$$($(BIN)/python -c 'import sklearn; print(sklearn.__version__)')"

bench: $(BIN)/.bench .venv-mlflow/bin/mlflow  ## the performance figures of docs/performance.md (needs wrk: apt-get install wrk, and PostgreSQL)
	$(BIN)/python bench/serving.py
	$(BIN)/python bench/batch.py --items 100000 --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
	$(BIN)/python bench/realtime_under_batch.py --items 100000
	$(BIN)/python bench/engines.py --texts 1000000

soak: install  ## 16 connections, 60 s of mixed traffic with a promotion and a rollback: 0 unexpected answers
	$(BIN)/python bench/soak.py --seconds 60 --connections 16

$(BIN)/.mutate: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet --constraint constraints.txt --editable '.[test,mutate]'
	touch $@

# setup.cfg [mutmut] says which modules and which tests; each mutant runs only the tests that execute it,
# first with a fifth of each property test's examples (tests/conftest.py); the survivors run again with
# all of them, their tests timed again first (a mutant's time limit grows with its tests' time).
mutate: $(BIN)/.mutate  ## mutation testing: the score, and every mutant no test kills listed with a reason
	rm -rf mutants
	HYPOTHESIS_PROFILE=mutation $(BIN)/mutmut run --max-children 2
	survivors="$$($(BIN)/python bench/mutants.py --survivors)"; \
	if [ -n "$$survivors" ]; then rm mutants/mutmut-stats.json && $(BIN)/mutmut run --max-children 2 $$survivors; fi
	$(BIN)/python bench/mutants.py

# The container image with podman, on a machine without an image registry: the base image is built
# from Debian's packages (mmdebstrap, then podman import) once, then the Dockerfile is built FROM it.
# Elsewhere `docker build -t coe-template .` uses the Dockerfile's public Python base instead.
BASE_IMAGE ?= localhost/bookworm-py:base
IMAGE ?= localhost/coe-template:latest
DEBIAN ?= http://deb.debian.org
# crun fails on such machines: runc, cgroupfs, lower ulimits (see the file).
PODMAN := CONTAINERS_CONF=$(CURDIR)/deploy/podman/containers.conf podman
# pip in the build checks certificates against the host's bundle (an HTTPS proxy with its own CA).
CA_BUNDLE ?= /etc/ssl/certs/ca-certificates.crt

image:  ## build $(IMAGE) with podman (and the base image from Debian packages if missing)
	@if ! $(PODMAN) image exists $(BASE_IMAGE); then \
	  set -e; mkdir -p build; rm -f build/rootfs.tar; \
	  echo "building $(BASE_IMAGE) with mmdebstrap"; \
	  mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates \
	    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
	    --dpkgopt='path-exclude=/usr/share/locale/*' \
	    bookworm build/rootfs.tar "deb $(DEBIAN)/debian bookworm main" \
	    "deb $(DEBIAN)/debian bookworm-updates main" "deb $(DEBIAN)/debian-security bookworm-security main"; \
	  $(PODMAN) import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
	    build/rootfs.tar $(BASE_IMAGE); \
	  rm -f build/rootfs.tar; \
	fi
	$(PODMAN) build --format docker --build-arg BASE=$(BASE_IMAGE) \
	  --volume $(CA_BUNDLE):/etc/ssl/certs/ca-certificates.crt:ro --tag $(IMAGE) .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis .mypy_cache .ruff_cache .ci/node/node_modules mutants
