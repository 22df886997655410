# cv-platform: `make setup`, `make test`, `make lint`, `make render`, `make up`, `make bench`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STACK ?= staging
OUT ?= build/render/$(STACK)
# pulumi up with a local file backend (no Pulumi Cloud account needed).
PULUMI_BACKEND_URL ?= file://$(HOME)/.pulumi-local

.PHONY: setup test lint fmt render up preview bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt model/requirements.txt model/requirements-serve.txt scripts/install-system-packages
	scripts/install-system-packages
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

test: setup
	$(PY) -m pytest -n 2

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy __main__.py infra pipeline policy

fmt: setup
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

# Offline: what STACK would create, as manifests, with no cluster or credentials.
render: setup
	$(PY) -m pipeline render $(STACK) --out $(OUT)
	@echo "rendered $(STACK) into $(OUT)"

# Online: needs the pulumi CLI, a kube context and PULUMI_CONFIG_PASSPHRASE.
up: setup
	@command -v pulumi >/dev/null || { echo "make up: the pulumi CLI is not installed (see README: Deploy)" >&2; exit 1; }
	PULUMI_BACKEND_URL=$(PULUMI_BACKEND_URL) pulumi stack select --create $(STACK)
	PULUMI_BACKEND_URL=$(PULUMI_BACKEND_URL) pulumi up --stack $(STACK)

bench: setup
	$(PY) -m bench

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
