# cv-platform: `make setup`, `make test`, `make lint`, `make render`, `make up`, `make bench`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STACK ?= staging
OUT ?= build/render/$(STACK)

.PHONY: setup test lint fmt render up bench clean rehearse rehearse-failures

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt model/requirements.txt model/requirements-serve.txt scripts/install-system-packages
	scripts/install-system-packages
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

test: setup
	$(PY) -m pytest -n 2

# Code and tests alike: an unused import, a format slip or a type error fails.
lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy __main__.py infra pipeline policy rehearsal tests model bench

fmt: setup
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

# Offline: what STACK would create, as manifests, with no cluster or credentials.
render: setup
	$(PY) -m pipeline render $(STACK) --out $(OUT)

# Online: pulumi up with a local file backend, to the stack's kube context when it is
# the current one (scripts/up says what is missing: the CLI, the passphrase, the context).
up: setup
	scripts/up $(STACK)

# The whole delivery on real parts on this machine (docs: README, Rehearsal): a private
# Docker Engine, a local registry, the ci/ stage scripts. Needs root; report in
# build/rehearsal/report.json.
rehearse: setup
	scripts/install-system-packages rehearsal
	$(PY) -m rehearsal

# Stacks that break the workload must fail at the right stage, with a clear line.
rehearse-failures: setup
	scripts/install-system-packages rehearsal
	$(PY) -m rehearsal --variant rootfs-write --expect-failure "deploy staging"
	$(PY) -m rehearsal --variant readiness-path --expect-failure "deploy staging"

bench: setup
	$(PY) -m bench

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
