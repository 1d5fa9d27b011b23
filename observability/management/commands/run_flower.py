"""python manage.py run_flower [--port N] [--address A]: Flower behind HTTP basic auth, always.

The credentials come from FLOWER_BASIC_AUTH (`user:password`, Flower's own variable); production
refuses to start without it. Locally a password is generated once into var/flower_password (mode
0600) and the user is `admin`. The secret reaches Flower through its environment, never its
command line (which every user of the machine can read in `ps`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from observability.startups import FLOWER, record_startup
from swarm_site.local_secrets import local_secret

PASSWORD_FILE_NAME = "flower_password"  # noqa: S105 - a file name, not a password


def flower_credentials() -> str:
    """`user:password` for Flower's basic auth."""
    configured = os.environ.get("FLOWER_BASIC_AUTH", "").strip()
    if configured:
        if ":" not in configured.split(",")[0]:
            raise CommandError("FLOWER_BASIC_AUTH must be user:password")
        return configured
    if settings.PRODUCTION:
        raise CommandError("FLOWER_BASIC_AUTH is required in production (user:password)")
    password = local_secret(Path(settings.VAR_DIR) / PASSWORD_FILE_NAME, what="FLOWER_BASIC_AUTH")
    if not password:
        raise CommandError(f"could not read {Path(settings.VAR_DIR) / PASSWORD_FILE_NAME}")
    return f"admin:{password}"


class Command(BaseCommand):
    help = "Start Flower (the Celery task monitor) behind basic auth."

    def add_arguments(self, parser):
        parser.add_argument("--address", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=int(os.environ.get("FLOWER_PORT", "5555")))

    def handle(self, *args, address: str, port: int, **options):
        env = dict(os.environ, FLOWER_BASIC_AUTH=flower_credentials())
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # Flower keeps its own metrics out of the shared directory
        argv = [sys.executable, "-m", "celery", "-A", "swarm_site", "flower", f"--address={address}", f"--port={port}"]
        self.stdout.write(f"Flower on http://{address}:{port} (basic auth; local password in var/{PASSWORD_FILE_NAME})")
        self.stdout.flush()
        record_startup(FLOWER)
        os.execve(argv[0], argv, env)  # noqa: S606 - replaces this process with Flower
