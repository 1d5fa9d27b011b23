"""Our API's gunicorn settings (swarm_site/gunicorn.conf.py) as values, for the anchor to serve under."""

from __future__ import annotations

import os
import runpy
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from unittest import mock

OURS = Path(__file__).resolve().parents[2] / "swarm_site" / "gunicorn.conf.py"


def ours(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Every setting of swarm_site/gunicorn.conf.py (workers, worker_class, threads, timeouts, bind,
    access log...) evaluated under `env` (default: this process's environment); its hooks (functions)
    and imported modules left out."""
    if env is None:
        namespace = runpy.run_path(str(OURS))
    else:
        with mock.patch.dict(os.environ, dict(env), clear=True):
            namespace = runpy.run_path(str(OURS))
    return {
        name: value
        for name, value in namespace.items()
        if not name.startswith("_") and not callable(value) and not isinstance(value, types.ModuleType)
    }


# Hooks that are how the server treats connections, not our services: the anchor runs them too.
SHARED_HOOKS = ("pre_request",)


def _hooks() -> dict[str, types.FunctionType]:
    namespace = runpy.run_path(str(OURS))
    return {n: v for n, v in namespace.items() if not n.startswith("_") and isinstance(v, types.FunctionType)}


def hooks() -> list[str]:
    """The names of our configuration's hooks which the anchor does not run (they start our services)."""
    return sorted(name for name in _hooks() if name not in SHARED_HOOKS)


def shared_hooks() -> dict[str, types.FunctionType]:
    """Our configuration's hooks that the anchor runs as well (SHARED_HOOKS)."""
    return {name: hook for name, hook in _hooks().items() if name in SHARED_HOOKS}
