"""Secrets generated once per machine under var/ for the local default (production sets them)."""

from __future__ import annotations

import logging
import os
import secrets
import time
from pathlib import Path

log = logging.getLogger(__name__)


def local_secret(path: Path, *, what: str) -> str:
    """The secret in `path`, generated (256 random bits) the first time.

    The file is created with O_EXCL and mode 0600, so concurrent processes agree on one secret and
    other users of the machine cannot read it. Empty when another process is still writing it.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(20):  # another process may be between creating the file and writing it
            value = path.read_text().strip()
            if value:
                return value
            time.sleep(0.05)
        return ""
    value = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    log.warning("%s is unset: generated a local one in %s", what, path)
    return value
