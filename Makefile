# The two commands a newcomer needs: `make run` and `make test`. Everything else is for developers.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# sam build needs real python3.12/3.13 binaries; on pyenv machines expose them next to the default.
PYENV_PYTHONS := $(shell command -v pyenv >/dev/null 2>&1 && pyenv versions --bare 2>/dev/null | grep -E '^3\.(11|12|13)\.[0-9]+$$' | paste -sd: -)
SAM := SAM_CLI_TELEMETRY=0 $(if $(PYENV_PYTHONS),PYENV_VERSION=$(PYENV_PYTHONS)) $(BIN)/sam

.PHONY: install run test lint format build validate deploy bench bench-e2e lock clean

$(STAMP): requirements-dev.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -U pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements-dev.lock
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

# checkov (make lint's security scan) in a virtual environment of its own: its pins clash with ours.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-stamp
$(CHECKOV_STAMP): lint/checkov-requirements.txt
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install -q --disable-pip-version-check -r lint/checkov-requirements.txt
	@touch $(CHECKOV_STAMP)

## Start the docker-free local stack (moto + HTTP API + pollers) with the dev credentials.
run: $(STAMP)
	$(BIN)/scrm local run

## Run the whole test suite.
test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP) $(CHECKOV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy layers/scrm_sync/scrm_sync local/scrm_local bench edge/scrm_edge greengrass
	@for app in functions/*/app.py; do MYPYPATH=layers/scrm_sync:edge $(BIN)/mypy --no-error-summary $$app || exit 1; done
	$(SAM) validate --lint --region us-east-1
	$(BIN)/cfn-lint template.yaml
	$(BIN)/python -m scrm_local.checkov_gate --checkov $(CHECKOV_VENV)/bin/checkov

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

build: $(STAMP)
	$(SAM) build

## Deploy the dev stack, then publish the sidebar page into it (needs the wecom_sidebar entry).
STACK ?= scrm-sync-dev
deploy: build
	$(SAM) deploy --config-env dev
	$(BIN)/scrm sidebar publish --stack-name $(STACK)

## Benchmarks; their peers (wechatpy) are installed here only, never by `make install` or `make test`.
bench: $(STAMP)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r bench/requirements.txt
	$(BIN)/python -m bench

## Freshness through `scrm local run` (moto): POST /events, a signed webhook and a MySQL commit
## until GET /profiles shows the change. SCRM_BENCH_FRESHNESS_RATE / _SECONDS override the defaults.
bench-e2e: $(STAMP)
	$(BIN)/python -m bench.freshness

## Re-resolve the pinned development dependencies from requirements-dev.in.
lock:
	rm -rf /tmp/scrm-lock-venv && $(PYTHON) -m venv /tmp/scrm-lock-venv
	/tmp/scrm-lock-venv/bin/pip install -q -U pip && /tmp/scrm-lock-venv/bin/pip install -q -r requirements-dev.in
	/tmp/scrm-lock-venv/bin/pip freeze --exclude-editable > requirements-dev.lock

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache .hypothesis
