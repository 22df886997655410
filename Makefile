# cv-platform: `make setup`, `make test`, `make lint`, `make render`, `make up`, `make bench`, `make lock`.
# Every Python package comes from uv.lock, installed by uv (pinned, bootstrapped
# from PyPI into .tools/ when missing).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
STACK ?= staging
OUT ?= build/render/$(STACK)
# Keep equal to the uv pin in pyproject.toml's dev group and infra/jenkins/agent/Dockerfile
# (tests/test_packaging.py checks).
UV_VERSION := 0.13.8
UV_DIR := .tools/uv-$(UV_VERSION)
UV := $(UV_DIR)/bin/uv
# uv syncs into VENV; --locked: install exactly uv.lock, and fail rather than re-resolve
# when pyproject.toml and the lock disagree (run make lock).
export UV_PROJECT_ENVIRONMENT := $(VENV)
SYNC := $(UV) sync --locked --python $(PYTHON)


.PHONY: setup runtime test lint fmt render up bench lock clean rehearse rehearse-failures

$(UV):
	PYTHON=$(PYTHON) scripts/bootstrap-uv $(UV_VERSION) $(UV_DIR)

# Everything: the runtime, the plot extra, the dev group (tests, lint, the model server)
# and the Debian packages the tests run.
setup: $(UV)
	scripts/install-system-packages
	@echo "setup: syncing $(VENV) with uv.lock (runtime, plot and dev)"
	$(SYNC) --all-extras

# What render, set-image, promote, preview and up need; keeps whatever else VENV has.
runtime: $(UV)
	@echo "setup: syncing $(VENV) with uv.lock (runtime only)"
	$(SYNC) --no-dev --inexact

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
render: runtime
	$(PY) -m pipeline render $(STACK) --out $(OUT)

# Online: pulumi up with a local file backend, to the stack's kube context when it is
# the current one (scripts/up says what is missing: the CLI, the passphrase, the context).
up: runtime
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
	$(PY) -m rehearsal --variant prod-latency --expect-failure "verify prod"
	$(PY) -m rehearsal --variant prod-rollback --expect-failure "verify prod 2"

bench: setup
	$(PY) -m bench

# After editing dependencies in pyproject.toml: resolve uv.lock again and write the
# requirement files exported from it (the model image's, and Pulumi's own requirements.txt).
lock: $(UV)
	$(UV) lock
	UV=$(UV) scripts/export-requirements

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
