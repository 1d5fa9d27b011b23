# Benchmarks, soak and the release gate. The main Makefile does `include bench/bench.mk` (after it
# defines VENV, PY and PYTHON; its `install-test` and `models` targets are prerequisites here).
#
#   make titanic [BUDGET=0.10] [MICRO=1 | LIMIT=N]   the Titanic suite on a stack of its own -> reports/titanic_<date>.json
#   make soak-live [QPS=120] [DURATION=5m] [URL=...] [MIX=cache:85,...] [P95_MS=150]   Locust soak -> reports/soak_<date>.json
#   make peers                                       gateway vs llama-cpp-python, llama_cpp.server, LiteLLM -> reports/peers_<date>.json
#   make gate [GATE_STAGES=a,b] [GATE_FORCE_FAIL=stage]   the release gate (non-zero exit on any failed stage)
#   make smoke-loader                                the default model loaded on the configured device: load time, RSS, VRAM on a GPU
#   make smoke-live [URL=http://127.0.0.1:8000]      10 calls to /orchestrate and /vote on the RUNNING stack (SWARM_API_KEY if set)
#   make micro [openai_cost=0.05] [STRICT_COST=on]   the 40-item micro Titanic slice on a stack of its own, cap CAP
#   make trust [MODELS=a,b] [LIMIT=N]                when each model's own factual answer may be trusted: fitted on the tuning part -> reports/trust_<date>.json
#   make reference [MODEL=a] [LIMIT=N]               when an answer read from WordNet's notes may be trusted: fitted on the tuning part -> reports/reference_<date>.json
#   make humaneval [MODELS=a,b] [LIMIT=N]            HumanEval through a stack of its own per model, and the model alone -> reports/humaneval_<date>.json
#   make profiles [MODELS=a,b] [N=20]                each model's 20-token answer and first SSE token via its own stack, and raw -> reports/profiles_<date>.json
#   make hotpath [QUICK=1] [MODEL=a] [HOTPATH_DURATION=10] [HOTPATH_CONNECTIONS=8]   the hot path under wrk: cache hit and head vs a bare Django + DRF anchor and LiteLLM, 1-token pass-through -> reports/hotpath_<date>.json
# Each of the three ends with one `PASS <name>: ...` or `FAIL <name>: ...` line and exits non-zero on FAIL.
#
# LiteLLM's proxy extras pin older gunicorn/rich than the gateway uses, so the proxy lives in a
# virtualenv of its own (var/venv-litellm), never in $(VENV).
VENV ?= .venv
PYTHON ?= $(VENV)/bin/python
PY ?= python3
BUDGET ?= 0.10
CAP ?= 0.02
QPS ?= 120
DURATION ?= 5m
P95_MS ?= 150
LITELLM_VENV ?= var/venv-litellm
LITELLM_SPEC ?= litellm[proxy]==1.106.2

SMOKE_URL ?= http://127.0.0.1:8000

.PHONY: install-bench titanic soak-live peers gate titanic-data smoke-loader smoke-live micro humaneval trust reference profiles hotpath \
	wrk-deps

$(VENV)/.bench-installed: requirements/bench.txt $(VENV)/.test-installed
	$(PYTHON) -m pip install -r requirements/bench.txt
	@touch $@

install-bench: $(VENV)/.bench-installed

$(LITELLM_VENV)/bin/litellm:
	$(PY) -m venv $(LITELLM_VENV)
	$(LITELLM_VENV)/bin/python -m pip install -q --upgrade pip
	$(LITELLM_VENV)/bin/python -m pip install -q '$(LITELLM_SPEC)'

# Regenerate the suite from its generator (fixed seed); `--check` is part of the tests.
titanic-data: install-bench
	$(PYTHON) -m bench.titanic.generate

titanic: install-bench models
	$(PYTHON) -m bench.titanic --budget $(BUDGET) --cap $(CAP)$(if $(filter 1 yes true,$(MICRO)), --micro)$(if $(LIMIT), --limit $(LIMIT))

soak-live: install-bench models
	$(PYTHON) bench/soak/locustfile.py --qps $(QPS) --duration $(DURATION) --p95-target-ms $(P95_MS)$(if $(URL), --url $(URL))$(if $(MIX), --mix $(MIX))

peers: install-bench models $(LITELLM_VENV)/bin/litellm
	$(PYTHON) -m bench.peers --litellm $(LITELLM_VENV)/bin/litellm

gate: install-bench models
	$(PYTHON) -m bench.gate

smoke-loader: install-bench models
	$(PYTHON) -m bench.gate --stage-impl loader

# Against the stack `make run` started (URL overrides it); the key: SWARM_API_KEY, else the anonymous loopback caller.
smoke-live: install-bench
	$(PYTHON) -m bench.gate --stage-impl live-smoke --url $(or $(URL),$(SMOKE_URL))

# openai_cost: what one call's worst case costs at the loopback provider (USD); STRICT_COST=on: stop at the first refusal.
micro: install-bench models
	$(PYTHON) -m bench.micro --budget $(BUDGET) --cap $(CAP)$(if $(openai_cost), --openai-cost $(openai_cost))$(if $(filter on 1 yes true,$(STRICT_COST)), --strict-cost)

# MODELS: registry aliases (default: every model whose file is prefetched); LIMIT: the first N of the 164 problems.
# Model-written code runs only in the bubblewrap sandbox: sandbox-deps installs bwrap (as root), else the run refuses.
trust: install-bench models
	$(PYTHON) -m bench.trust$(if $(MODELS), --models $(MODELS))$(if $(LIMIT), --limit $(LIMIT))

reference: install-bench models
	$(PYTHON) -m bench.reference$(if $(MODEL), --model $(MODEL))$(if $(LIMIT), --limit $(LIMIT))

humaneval: install-bench models sandbox-deps
	$(PYTHON) -m bench.humaneval$(if $(MODELS), --models $(MODELS))$(if $(LIMIT), --limit $(LIMIT))

profiles: install-bench models
	$(PYTHON) -m bench.profiles$(if $(MODELS), --models $(MODELS))$(if $(N), --n $(N))

# wrk (Debian package `wrk`), the load generator of `make hotpath`: installed when root, else what to install.
wrk-deps:
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -q && apt-get install -y -q wrk; } \
		|| { echo "wrk is missing: install the Debian package wrk (apt-get install wrk, as root)" >&2; exit 1; }

# QUICK=1: 2 s per case (a smoke run; noisy); MODEL: a registry alias (default smollm2-135m, the tiny profile).
# A measurement, not a gate: it exits 0 whatever the figures (non-zero only when the benchmark itself broke).
hotpath: install-bench models wrk-deps $(LITELLM_VENV)/bin/litellm
	$(PYTHON) -m bench.hotpath --litellm $(LITELLM_VENV)/bin/litellm$(if $(filter 1 yes true,$(QUICK)), --quick)$(if $(MODEL), --model $(MODEL))$(if $(HOTPATH_DURATION), --duration $(HOTPATH_DURATION))$(if $(HOTPATH_CONNECTIONS), --connections $(HOTPATH_CONNECTIONS))
