"""Swarm settings, read strictly from the environment (see swarm_site/env.py).

Embedded defaults run the whole stack on one machine: SQLite under var/ and the Redis on
127.0.0.1:6379. `DATABASE_URL` switches to PostgreSQL, `REDIS_URL` points elsewhere.
`SWARM_ENV=production` requires `SECRET_KEY` and turns off the development key.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from swarm_site.broker import amqp_celery_settings, is_amqp, task_queues
from swarm_site.env import (
    env_bool,
    env_broker_url,
    env_db,
    env_float,
    env_int,
    env_list,
    env_redis_url,
    env_str,
    load_dotenv,
)
from swarm_site.queues import CeleryQueue

BASE_DIR = Path(__file__).resolve().parent.parent
load_dotenv(BASE_DIR)

SWARM_ENV = env_str("SWARM_ENV", "local")
if SWARM_ENV not in {"local", "production", "test"}:
    raise ImproperlyConfigured(f"SWARM_ENV={SWARM_ENV!r} must be one of local, production, test")
PRODUCTION = SWARM_ENV == "production"

SECRET_KEY = env_str("SECRET_KEY") if PRODUCTION else env_str("SECRET_KEY", "swarm-local-development-key")
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

# --- Production behind TLS (`manage.py check --deploy`: no warnings) --------------------------
# A TLS-terminating proxy (nginx, Caddy) sits in front. Each setting is on by default in production
# only and can be overridden; locally the gateway stays plain HTTP on loopback.
if PRODUCTION and (
    len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY.startswith("django-insecure-")
):  # Django's own bar (security.W009)
    raise ImproperlyConfigured(
        "SECRET_KEY is too weak for production: it needs at least 50 characters, 5 of them different, "
        "and no 'django-insecure-' prefix (python -c 'import secrets; print(secrets.token_urlsafe(50))')"
    )
# "X-Forwarded-Proto: https": the proxy sets this header (overwriting the client's) on HTTPS requests.
_PROXY_SSL_HEADER = env_str("DJANGO_SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto: https" if PRODUCTION else "")
if _PROXY_SSL_HEADER.strip():
    _header, _, _value = _PROXY_SSL_HEADER.partition(":")
    if not _header.strip() or not _value.strip() or " " in _header.strip():
        raise ImproperlyConfigured(
            f"DJANGO_SECURE_PROXY_SSL_HEADER={_PROXY_SSL_HEADER!r} must look like 'X-Forwarded-Proto: https' "
            "(or be empty)"
        )
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _header.strip().upper().replace("-", "_"), _value.strip())
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", PRODUCTION)
# Plain-HTTP probes from the host itself (health checks, Prometheus) are not redirected.
SECURE_REDIRECT_EXEMPT = env_list("DJANGO_SECURE_REDIRECT_EXEMPT", r"^health$,^metrics$")
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 31_536_000 if PRODUCTION else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", PRODUCTION)
SESSION_COOKIE_SECURE = env_bool("DJANGO_SESSION_COOKIE_SECURE", PRODUCTION)
CSRF_COOKIE_SECURE = env_bool("DJANGO_CSRF_COOKIE_SECURE", PRODUCTION)
SECURE_CONTENT_TYPE_NOSNIFF = env_bool("DJANGO_SECURE_CONTENT_TYPE_NOSNIFF", True)
X_FRAME_OPTIONS = env_str("DJANGO_X_FRAME_OPTIONS", "DENY")
if X_FRAME_OPTIONS not in {"DENY", "SAMEORIGIN"}:
    raise ImproperlyConfigured(f"DJANGO_X_FRAME_OPTIONS={X_FRAME_OPTIONS!r} must be DENY or SAMEORIGIN")
SECURE_REFERRER_POLICY = env_str("DJANGO_SECURE_REFERRER_POLICY", "same-origin")
_REFERRER_POLICIES = {
    "no-referrer", "no-referrer-when-downgrade", "origin", "origin-when-cross-origin", "same-origin",
    "strict-origin", "strict-origin-when-cross-origin", "unsafe-url",
}  # fmt: skip
if not {p.strip() for p in SECURE_REFERRER_POLICY.split(",")} <= _REFERRER_POLICIES:
    raise ImproperlyConfigured(
        f"DJANGO_SECURE_REFERRER_POLICY={SECURE_REFERRER_POLICY!r} is not a Referrer-Policy "
        f"(one or more of {', '.join(sorted(_REFERRER_POLICIES))})"
    )

VAR_DIR = Path(env_str("SWARM_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our static files (no CDN at run time)
    "django_celery_beat",
    "django_prometheus",
    "observability",
    "inference",
    "routing",
    "budget",
    "mining",
    "training",
    "access",
    "arbiter",
]

MIDDLEWARE = [
    "observability.middleware.PrometheusBeforeMiddleware",  # django-prometheus's, labels looked up once
    "swarm_site.middleware.RequestIdMiddleware",
    # Outside the middleware that reads the Host header, so a bad one gets the JSON error shape too.
    "swarm_site.middleware.JsonErrorMiddleware",
    "access.middleware.ReleaseSlotsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Django's session, user and message middleware, passed over by an API call without a session cookie.
    "swarm_site.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "swarm_site.middleware.AuthenticationMiddleware",
    "swarm_site.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "observability.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "swarm_site.urls"
WSGI_APPLICATION = "swarm_site.wsgi.application"
ASGI_APPLICATION = "swarm_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env_db("DATABASE_URL", f"sqlite:///{VAR_DIR / 'swarm.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the API read while a worker writes the interaction log.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            # Every transaction takes the write lock up front, so budget reservations serialize.
            "transaction_mode": "IMMEDIATE",
        }
    )
    # Tests share the database between threads and processes: a file, not memory.
    DATABASES["default"].setdefault("TEST", {"NAME": str(VAR_DIR / "test-swarm.sqlite3")})
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A connection pool per process: many threads (web, cloud calls) share a bounded set of
    # connections instead of opening one each and running the server out of slots.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": env_int("SWARM_DB_POOL_MAX", 10, minimum=1),
        "timeout": env_float("SWARM_DB_POOL_TIMEOUT_S", 10.0, minimum=0.1),
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["swarm_site.parsers.LimitedJSONParser"],  # size and depth checked first
    # One access policy for every API view (access/authentication.py); open views say so themselves.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "access.authentication.StaffSessionAuthentication",
        "access.authentication.ApiKeyAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["access.authentication.CallerLimitsThrottle"],
    "EXCEPTION_HANDLER": "swarm_site.errors.json_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}

# OpenAPI 3 schema at /api/schema/, Swagger UI at /api/docs/ (swarm_site/schema.py documents the views).
SPECTACULAR_SETTINGS = {
    "TITLE": "Swarm gateway API",
    "DESCRIPTION": "An LLM gateway: exact cache, a council of local heads, a budgeted cloud chain. "
    'Every error is {"error": {"message", "type", "param", "code"}}.',
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_AUTHENTICATION": [],  # the schema and the docs page carry no secrets
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},  # no call to the online validator
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "PREPROCESSING_HOOKS": ["swarm_site.schema.api_endpoints_only"],
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "swarm_site.schema.finish_schema"],
}

# --- Redis, Celery -------------------------------------------------------------------------
REDIS_URL = env_redis_url("REDIS_URL", "redis://127.0.0.1:6379/0")
# Socket timeout for the API's own Redis calls (cache, heartbeats): Redis down -> fast 503.
SWARM_REDIS_TIMEOUT_S = env_float("SWARM_REDIS_TIMEOUT_S", 0.5, minimum=0.05)
# Redis Sentinel: with REDIS_URL=sentinel://h1:26379;sentinel://h2:26379;sentinel://h3:26379/0 every client
# (swarm_site/redis_client.py, Celery's broker and result backend) asks the sentinels for this primary.
SWARM_REDIS_SENTINEL_MASTER = env_str("SWARM_REDIS_SENTINEL_MASTER", "swarm")
# Replicas that must hold an interaction (the log's XADD) before the API answers: WAIT <n> <ms> in the same
# round trip. Fewer in time -> swarm_redis_replica_ack_misses_total, answered all the same; the append
# failing -> 503 (with 0, the answer goes out and the interaction is counted as dropped). 0: no wait;
# with Sentinel, 1 (docs/OPERATIONS.md "Redis Sentinel"). The wait must end before the socket timeout.
SWARM_REDIS_MIN_REPLICAS_ACK = env_int("SWARM_REDIS_MIN_REPLICAS_ACK", 0, minimum=0)
SWARM_REDIS_REPLICA_ACK_TIMEOUT_MS = env_int("SWARM_REDIS_REPLICA_ACK_TIMEOUT_MS", 100, minimum=1)
if SWARM_REDIS_REPLICA_ACK_TIMEOUT_MS >= SWARM_REDIS_TIMEOUT_S * 1000:
    raise ImproperlyConfigured(
        f"SWARM_REDIS_REPLICA_ACK_TIMEOUT_MS={SWARM_REDIS_REPLICA_ACK_TIMEOUT_MS} must be below "
        f"SWARM_REDIS_TIMEOUT_S ({SWARM_REDIS_TIMEOUT_S * 1000:g} ms)"
    )
# How long the API waits for a worker's answer before a 504.
SWARM_DEADLINE_S = env_float("SWARM_DEADLINE_S", 60.0, minimum=1.0)
# The worker's council decides this long before the request's deadline (a quarter of it by default), leaving
# the rest for the paid chain when it is unsure; a head that can use more time (the code head's redraws and
# witnesses) starts no draw that would end after that.
SWARM_COUNCIL_RESERVE_S = env_float("SWARM_COUNCIL_RESERVE_S", SWARM_DEADLINE_S / 4, minimum=0.0)
# The interaction log (routing/interaction_log.py): the API appends each answered request to the Redis
# stream swarm:interactions, trimmed to about this many entries (the oldest unwritten ones go first);
# the writers in worker-cpu read up to SWARM_INTERACTION_BATCH entries at a time and take over a dead
# writer's unwritten entries once they have waited SWARM_INTERACTION_CLAIM_IDLE_S.
SWARM_INTERACTION_STREAM_MAXLEN = env_int("SWARM_INTERACTION_STREAM_MAXLEN", 100_000, minimum=1000)
SWARM_INTERACTION_BATCH = env_int("SWARM_INTERACTION_BATCH", 500, minimum=1)
SWARM_INTERACTION_CLAIM_IDLE_S = env_float("SWARM_INTERACTION_CLAIM_IDLE_S", 30.0, minimum=0.1)
# After a batch smaller than SWARM_INTERACTION_BATCH a writer waits this long before reading again, so that
# under load entries are stored a few hundred to a transaction (not one per request); 0: read again at once.
SWARM_INTERACTION_LINGER_MS = env_int("SWARM_INTERACTION_LINGER_MS", 200, minimum=0)
# Serving processes per GPU worker (each loads the model: ~100-500 MB). A request for the model is
# admitted while the stack's queue for it is answered within SWARM_ADMIT_WAIT_S, estimated from the
# serving processes' own task times (routing/admission.py); over it -> 503 + Retry-After at once, while
# the cache, pattern and exact heads keep answering. SWARM_MODEL_ADMIT: a fixed cap on top (requests
# running or queued across the stack); 0: none.
SWARM_MODEL_SLOTS = env_int("SWARM_MODEL_SLOTS", 1, minimum=1)
# CPU threads of each serving process's llama.cpp context, over the registry's `threads`; 0: the registry's,
# and where that is null, the cores the worker may use shared among its slots (inference.backends.llama.model_threads).
SWARM_MODEL_THREADS = env_int("SWARM_MODEL_THREADS", 0, minimum=0)
# A quarter of the deadline by default: a burst is queued (it drains in seconds), a model that stays
# behind its traffic sends the excess back at once rather than making every chat wait half a minute.
SWARM_ADMIT_WAIT_S = env_float("SWARM_ADMIT_WAIT_S", SWARM_DEADLINE_S / 4, minimum=0.1)
SWARM_MODEL_ADMIT = env_int("SWARM_MODEL_ADMIT", 0, minimum=0)
# The web server's threads per process (swarm_site/gunicorn.conf.py reads the same variable): half of
# them at most wait on the model at once, the rest stay free for the cache and the exact heads.
SWARM_WEB_THREADS = env_int("SWARM_WEB_THREADS", 32, minimum=2)

CELERY_BROKER_URL = env_broker_url("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = env_redis_url("CELERY_RESULT_BACKEND", REDIS_URL)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_TASK_DEFAULT_QUEUE = CeleryQueue.DEFAULT.value
CELERY_TASK_QUEUES = task_queues((q.value for q in CeleryQueue), amqp=False)
CELERY_TASK_CREATE_MISSING_QUEUES = True  # gpu.<n> queues appear as workers start
CELERY_TASK_ROUTES = {
    "routing.tasks.orchestrate": {"queue": CeleryQueue.GPU.value},
    "routing.tasks.generate": {"queue": CeleryQueue.GPU.value},
    "routing.tasks.complete_text": {"queue": CeleryQueue.GPU.value},
    "routing.tasks.log_interaction": {"queue": CeleryQueue.DEFAULT.value},
    "budget.tasks.cloud_answer": {"queue": CeleryQueue.CPU.value},
    "arbiter.tasks.swap_model": {"queue": CeleryQueue.GPU.value},
    "mining.tasks.mine_patterns": {"queue": CeleryQueue.CPU.value},  # the service names gpu.<n> when it can
    "training.tasks.train": {"queue": CeleryQueue.TRAIN.value},
    "training.tasks.poll_queue_file": {"queue": CeleryQueue.CPU.value},
    "training.tasks.nightly": {"queue": CeleryQueue.CPU.value},
    "training.tasks.judge_canary": {"queue": CeleryQueue.CPU.value},
}
# Answering a prompt twice is harmless, losing it is not: ack after the work, requeue when the
# process running it dies.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# An unacked message returns to the queue after this; it must exceed the request deadline so
# a slow answer is not handed to a second worker while the first still works on it.
SWARM_VISIBILITY_TIMEOUT_S = env_int(
    "SWARM_VISIBILITY_TIMEOUT_S", int(SWARM_DEADLINE_S * 2 + 30), minimum=int(SWARM_DEADLINE_S) + 1
)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": SWARM_VISIBILITY_TIMEOUT_S}
CELERY_RESULT_EXPIRES = 3600
# Publishing must not hang when Redis is down: the API answers 503 quickly instead.
CELERY_BROKER_CONNECTION_TIMEOUT = 1.0
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_PUBLISH_RETRY = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = 1.0
# Reads of the result backend: the API waits in one-second slices (routing/services.py), so a Redis
# that stops answering for this long ends a wait in flight with a 503, not when Redis comes back.
CELERY_REDIS_SOCKET_TIMEOUT = 3.0
# Sentinel (sentinel://...): kombu and Celery find the primary by its name; the sentinels are asked with
# the connect timeout (Celery's backend would otherwise wait on a silent sentinel without one).
_SENTINEL_OPTIONS = {
    "master_name": SWARM_REDIS_SENTINEL_MASTER,
    "sentinel_kwargs": {"socket_timeout": CELERY_REDIS_SOCKET_CONNECT_TIMEOUT,
                        "socket_connect_timeout": CELERY_REDIS_SOCKET_CONNECT_TIMEOUT},
}  # fmt: skip
if CELERY_BROKER_URL.startswith("sentinel://"):
    CELERY_BROKER_TRANSPORT_OPTIONS.update(_SENTINEL_OPTIONS)
if CELERY_RESULT_BACKEND.startswith("sentinel://"):
    CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = dict(_SENTINEL_OPTIONS)
# Flower's view of the stack comes from the workers' events (received, started, succeeded, failed).
# The publisher's task-sent event is left off: it would be a second message from the API on every
# request for the model, for a state ("sent") that "received" follows within milliseconds.
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_TASK_SEND_SENT_EVENT = False
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# A serving process verifies and loads its model before taking work; give it time to.
CELERY_WORKER_PROC_ALIVE_TIMEOUT = 300
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# RabbitMQ as the broker (CELERY_BROKER_URL=amqp://...): every queue a quorum queue, gpu.<n> included,
# publisher confirms, none of the Redis transport options above (swarm_site/broker.py says why).
if is_amqp(CELERY_BROKER_URL):
    globals().update(amqp_celery_settings(q.value for q in CeleryQueue))

# --- Models and inference ------------------------------------------------------------------
SWARM_MODELS_FILE = Path(env_str("SWARM_MODELS_FILE", str(BASE_DIR / "config" / "models.yaml")))
SWARM_MODEL_DIR = Path(env_str("SWARM_MODEL_DIR", str(VAR_DIR / "models")))
SWARM_MODEL = env_str("SWARM_MODEL", "")  # empty: the registry's default model
SWARM_VRAM_LIMIT_GB = env_float("SWARM_VRAM_LIMIT_GB", 10.5, minimum=0.1)
SWARM_WORKER_HEARTBEAT_S = env_float("SWARM_WORKER_HEARTBEAT_S", 5.0, minimum=0.5)
# This machine's name in a stack of several hosts: its serving queues become gpu.<node>.<n> and its
# workers and heartbeats carry it. Empty (one host): gpu.<n>, and workers are named after the hostname.
# (SWARM_HOST is another setting: the address the web server binds.)
SWARM_NODE = env_str("SWARM_NODE", "")

# --- Cloud escalation and budgets -------------------------------------------------------------
# Off by default: with it off, an UNSURE local answer stays UNSURE and nothing is ever paid for.
SWARM_CLOUD_ENABLED = env_bool("SWARM_CLOUD_ENABLED", False)

# --- Access: API keys and limits (access/authentication.py) ------------------------------------
# Each web process holds the live keys it has seen for this long (access/key_cache.py), emptied at
# once when any key changes (Redis pub/sub); 0: every request reads the key store.
SWARM_KEY_CACHE_S = env_float("SWARM_KEY_CACHE_S", 60.0, minimum=0.0)
# Without a key, callers on loopback may use the API (the embedded local default); production: never.
SWARM_ALLOW_ANONYMOUS_LOOPBACK = env_bool("SWARM_ALLOW_ANONYMOUS_LOOPBACK", not PRODUCTION)
if PRODUCTION and SWARM_ALLOW_ANONYMOUS_LOOPBACK:
    raise ImproperlyConfigured("SWARM_ALLOW_ANONYMOUS_LOOPBACK must be off in production: every caller needs a key")
SWARM_ANON_RATE_PER_MINUTE = env_int("SWARM_ANON_RATE_PER_MINUTE", 60, minimum=0)
SWARM_ANON_CONCURRENCY = env_int("SWARM_ANON_CONCURRENCY", 2, minimum=0)
SWARM_ANON_MAX_TOKENS = env_int("SWARM_ANON_MAX_TOKENS", 256, minimum=1)
# Proxies (addresses or networks) whose X-Forwarded-For is believed; none by default.
SWARM_TRUSTED_PROXIES = env_list("SWARM_TRUSTED_PROXIES", "")
for _proxy in SWARM_TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError:
        raise ImproperlyConfigured(f"SWARM_TRUSTED_PROXIES: {_proxy!r} is not an address or network") from None

# --- GPU arbiter (swap lock, webhooks) ------------------------------------------------------
# Unset: production answers 503; locally a token is generated once into var/arbiter_token.
SWARM_ARBITER_TOKEN = env_str("SWARM_ARBITER_TOKEN", "") or None
SWARM_SWAP_DEADLINE_S = env_float("SWARM_SWAP_DEADLINE_S", 120.0, minimum=1.0)
SWARM_SWAP_WEBHOOK_URL = env_str("SWARM_SWAP_WEBHOOK_URL", "") or None
SWARM_SWAP_WEBHOOK_SECRET = env_str("SWARM_SWAP_WEBHOOK_SECRET", "") or None
SWARM_SWAP_WEBHOOK_TIMEOUT_S = env_float("SWARM_SWAP_WEBHOOK_TIMEOUT_S", 5.0, minimum=0.1)

# --- LoRA distillation (training/) -----------------------------------------------------------
# Trained adapters (GGUF LoRA) live here; workers on other hosts need the same path (a shared mount).
SWARM_ADAPTER_DIR = Path(env_str("SWARM_ADAPTER_DIR", str(VAR_DIR / "adapters")))
# Jobs written to this file ([{"name", "dataset": [prompts]}]) are picked up by beat every 2 s
# (the "lora queue file every 2s" schedule, editable in admin).
SWARM_LORA_QUEUE_FILE = Path(env_str("SWARM_LORA_QUEUE_FILE", str(BASE_DIR / "tasks" / "lora_queue.json")))
SWARM_LORA_RANK = env_int("SWARM_LORA_RANK", 64, minimum=1)
SWARM_LORA_ALPHA = env_float("SWARM_LORA_ALPHA", 32.0, minimum=0.0)
SWARM_LORA_LR = env_float("SWARM_LORA_LR", 1e-3, minimum=0.0)
SWARM_LORA_MAX_STEPS = env_int("SWARM_LORA_MAX_STEPS", 300, minimum=1)
SWARM_LORA_BATCH_SIZE = env_int("SWARM_LORA_BATCH_SIZE", 8, minimum=1)
SWARM_LORA_TIME_BUDGET_S = env_float("SWARM_LORA_TIME_BUDGET_S", 40 * 60.0, minimum=1.0)
SWARM_LORA_HELDOUT_PERCENT = env_int("SWARM_LORA_HELDOUT_PERCENT", 10, minimum=0)
SWARM_LORA_AUTO_CANARY = env_bool("SWARM_LORA_AUTO_CANARY", True)  # a gated adapter starts its canary itself
# Guarded distilled trust (routing/heads/agent0.py): agent0 trusts a distilled adapter's greedy answer
# when the geometric mean of its token probabilities and the least of them reach these AND the prompt
# is near a prompt it was trained on, passing that group's false-hit guard (training/record.py), for
# an adapter whose gate found no confidently wrong answer (AdapterVersion.record.trust). bench/distill.py
# measures it. False: never.
SWARM_DISTILLED_TRUST = env_bool("SWARM_DISTILLED_TRUST", True)
SWARM_DISTILLED_MIN_TOKEN_CONFIDENCE = env_float("SWARM_DISTILLED_MIN_TOKEN_CONFIDENCE", 0.9, minimum=0.0)
SWARM_DISTILLED_MIN_TOKEN_PROB = env_float("SWARM_DISTILLED_MIN_TOKEN_PROB", 0.5, minimum=0.0)
# The reasoning head (routing/heads/reasoning.py): word problems worked out as a program and as written steps,
# trusted when both give the same number. Off by default: on the titanic suite's held-out part that agreement
# was right 5 times in 6 (reports/titanic_20261206_reasoning.json), on grade-school problems from outside the
# project 5 times in 9 (reports/reasoning_gsm_symbolic_heldout_20261207.json), short of the 97 % a trusted
# answer must reach, and each word problem holds the model for ~20 s on a 2-core CPU.
SWARM_REASONING_HEAD = env_bool("SWARM_REASONING_HEAD", False)
SWARM_CANARY_WEIGHT = env_int("SWARM_CANARY_WEIGHT", 5, minimum=0)
SWARM_CANARY_MIN_REQUESTS = env_int("SWARM_CANARY_MIN_REQUESTS", 200, minimum=1)
SWARM_CANARY_LATENCY_TOLERANCE = env_float("SWARM_CANARY_LATENCY_TOLERANCE", 0.10, minimum=0.0)
SWARM_CANARY_SUCCESS_TOLERANCE = env_float("SWARM_CANARY_SUCCESS_TOLERANCE", 0.0, minimum=0.0)

# --- Requests --------------------------------------------------------------------------------
SWARM_MAX_PROMPT_CHARS = env_int("SWARM_MAX_PROMPT_CHARS", 8000, minimum=1)
SWARM_MAX_TOKENS_LIMIT = env_int("SWARM_MAX_TOKENS_LIMIT", 1024, minimum=1)
# JSON bodies (swarm_site/parsers.py): larger -> 413, nested deeper -> 400, both before decoding.
SWARM_MAX_BODY_BYTES = env_int("SWARM_MAX_BODY_BYTES", 1024 * 1024, minimum=1024)
SWARM_MAX_JSON_DEPTH = env_int("SWARM_MAX_JSON_DEPTH", 64, minimum=2)
SWARM_DEFAULT_MAX_TOKENS = env_int("SWARM_DEFAULT_MAX_TOKENS", 128, minimum=1)
SWARM_CACHE_TTL_S = env_int("SWARM_CACHE_TTL_S", 24 * 3600, minimum=1)
SWARM_MIN_CONFIDENCE = env_float("SWARM_MIN_CONFIDENCE", 0.75, minimum=0.0)
DATA_UPLOAD_MAX_MEMORY_SIZE = max(2_621_440, SWARM_MAX_PROMPT_CHARS * 8)

SWARM_LOG_FORMAT = env_str("SWARM_LOG_FORMAT", "json")
if SWARM_LOG_FORMAT not in {"json", "plain"}:
    raise ImproperlyConfigured(f"SWARM_LOG_FORMAT={SWARM_LOG_FORMAT!r} must be json or plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "swarm_site.logs.RequestIdFilter"}},
    "formatters": {
        "json": {"()": "swarm_site.logs.JsonFormatter"},
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": SWARM_LOG_FORMAT, "filters": ["request_id"]}
    },
    "root": {"handlers": ["console"], "level": env_str("SWARM_LOG_LEVEL", "INFO")},
    "loggers": {"django.request": {"level": "ERROR"}, "httpx": {"level": "WARNING"}},
}
