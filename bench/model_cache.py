"""A local model's replies remembered on disk, so that a head's rules can be re-scored without generating again."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from inference.backends.base import Generation
from routing.heads.base import Generate


def caching(generate: Generate, path: Path | None) -> Generate:
    """`generate` remembering each reply in `path` (JSON), keyed by the messages and parameters."""
    store: dict[str, dict[str, Any]] = json.loads(path.read_text()) if path and path.is_file() else {}

    def call(messages: list[dict[str, str]], **params: Any) -> Generation:
        key = hashlib.sha256(json.dumps([messages, params], sort_keys=True).encode()).hexdigest()
        if key not in store:
            store[key] = generate(messages, **params).__dict__
            if path:
                path.write_text(json.dumps(store))
        return Generation(**store[key])

    return call
