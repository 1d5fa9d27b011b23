"""The worker side of a swap: replace this process's model, guarded by the lock's fencing number.

Runs in the serving worker's pool process (the one that holds `inference.runtime.current_backend()`),
one task at a time (prefork, concurrency 1), so no prompt is being answered while it swaps.

Order (a single GPU has room for one model, which is what the arbiter exists for):

1. check the fencing number (refuse a stale holder before touching anything);
2. unload the current model (frees its VRAM), build and load the new one (sha256-verified by the
   backend, VRAM guard included), warm it with one token;
3. check the fencing number again at the commit point: a lease that expired while the model
   loaded (or an API that gave up at its deadline and released the lock) is refused here;
4. commit: the process now serves the new model; the heartbeat says so.

Any refusal or failure after step 1 unloads what was half-loaded and reloads the previous model,
so the worker keeps serving what it served before.

The swap itself is `inference.runtime.swap_backend`.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from arbiter import lock
from inference import runtime
from inference.registry import RegistryError, load_registry
from swarm_site.redis_client import REDIS_ERRORS

log = logging.getLogger(__name__)


class SwapRefused(Exception):
    """The guard said no at the commit point; the previous model is back."""


def swap_model_in_worker(alias: str, fencing: int) -> dict[str, Any]:
    """Load `alias` in this process under lease `fencing`. Plain JSON out:

    `{"status": "swapped" | "refused" | "failed", "model", "previous_model", "worker", "pid",
    "fencing", "load_s", "changed", "reason"}`.
    """
    started = time.perf_counter()
    current = runtime.current_backend()
    result: dict[str, Any] = {
        "model": alias, "previous_model": current.spec.alias if current else None, "worker": runtime.worker_name(),
        "pid": os.getpid(), "fencing": fencing, "changed": False, "reason": None,
    }  # fmt: skip

    def done(status: str, reason: str | None = None) -> dict[str, Any]:
        result.update(status=status, reason=reason, load_s=round(time.perf_counter() - started, 3))
        log.info("swap to %s under lease %s: %s%s", alias, fencing, status, f" ({reason})" if reason else "")
        return result

    try:
        spec = load_registry().get(alias)
        lock.check_fencing(fencing)
    except RegistryError as exc:
        return done("failed", str(exc))
    except lock.StaleFencing as exc:
        return done("refused", str(exc))
    except REDIS_ERRORS as exc:  # the guard cannot be read: fail closed
        return done("refused", f"cannot check the fencing token, Redis is unavailable: {exc}")

    if current is not None and current.spec.alias == alias and current.loaded:
        return done("swapped", "already loaded")

    def guard() -> None:
        try:
            lock.check_fencing(fencing)
        except lock.StaleFencing as exc:
            raise SwapRefused(str(exc)) from None
        except REDIS_ERRORS as exc:
            raise SwapRefused(f"cannot check the fencing token, Redis is unavailable: {exc}") from None

    try:
        backend, _ = runtime.swap_backend(spec, before_commit=guard)
    except SwapRefused as exc:
        return done("refused", f"{exc}; kept {result['previous_model']}")
    except runtime.LOAD_ERRORS as exc:
        now = runtime.current_backend()
        kept = now.spec.alias if now is not None and now.loaded else None
        return done("failed", f"{type(exc).__name__}: {exc}; now serving {kept or 'nothing (reloads on next use)'}")
    result.update(changed=True, device=backend.describe().get("device"))
    if os.environ.get("SWARM_WORKER_ROLE") == "gpu":
        runtime.announce()  # /health shows the new model at once
    return done("swapped")
