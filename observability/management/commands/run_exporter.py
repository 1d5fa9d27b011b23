"""`manage.py run_exporter`: the independent metrics exporter (see observability/exporter.py)."""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from observability import exporter


class Command(BaseCommand):
    help = "Serve Swarm's scrape-time metrics (workers, queues, budget, GPU, multiprocess files) on loopback."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=os.environ.get("SWARM_EXPORTER_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=None, help="default: $SWARM_EXPORTER_PORT or 9091")

    def handle(self, *args: Any, **options: Any) -> None:
        port = options["port"] if options["port"] is not None else exporter._port_from_env()
        exporter.serve(options["host"], port)
