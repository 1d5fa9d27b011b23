"""python manage.py prefetch_models [ALIAS ...] [--force] [--no-embeddings]: fetch and verify model files.

Then (unless --no-embeddings) make sure the pattern-lookup embedder's ONNX export exists
(`mining.embeddings.prepare`: exported once per model file, offline, ~40 s; a no-op afterwards).
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from inference.fetch import FetchError, prefetch
from inference.integrity import IntegrityError
from inference.registry import RegistryError, load_registry, prefetch_specs


class Command(BaseCommand):
    help = "Fetch the registry's models (or the named ones) into SWARM_MODEL_DIR and verify their SHA-256."

    def add_arguments(self, parser):
        parser.add_argument(
            "aliases",
            nargs="*",
            help="models to fetch (default: every model marked for prefetch in the registry, and the served one)",
        )
        parser.add_argument("--force", action="store_true", help="download again even if a file is present")
        parser.add_argument("--no-progress", action="store_true", help="no progress bars")
        parser.add_argument(
            "--no-embeddings", action="store_true", help="skip the ONNX export of the pattern-mining embedder"
        )
        parser.add_argument("--summary", action="store_true", help="end with one PASS or FAIL line (make init)")

    def handle(self, *args, aliases: list[str], force: bool, no_progress: bool, no_embeddings: bool, summary: bool,
               **options):  # fmt: skip
        try:
            registry = load_registry()
            specs = prefetch_specs(registry, aliases)
            results = prefetch(specs, model_dir=settings.SWARM_MODEL_DIR, show_progress=not no_progress, force=force)
        except (RegistryError, FetchError, IntegrityError) as exc:
            if summary:
                self.stdout.write(f"FAIL init: {exc}")
            raise CommandError(str(exc)) from None
        for result in results:
            style = self.style.WARNING if result.status == "skipped" else self.style.SUCCESS
            self.stdout.write(style(f"{result.alias}: {result.status} {result.path} ({result.message})"))
        embedded = self._prepare_embeddings() if not no_embeddings else "not asked for"
        have = ", ".join(f"{r.alias} {r.status}" for r in results)
        if summary:
            self.stdout.write(f"PASS init: {have} (SHA-256 and size verified); embeddings {embedded}; "
                              f"in {settings.SWARM_MODEL_DIR}")  # fmt: skip

    def _prepare_embeddings(self) -> str:
        from mining import embeddings

        if not embeddings.is_available():
            self.stdout.write(self.style.WARNING("embeddings: skipped (requirements/ml.txt is not installed)"))
            return "skipped"
        result = embeddings.prepare()
        style = self.style.WARNING if result["status"] == "failed" else self.style.SUCCESS
        where = f" {result['path']}" if "path" in result else ""
        self.stdout.write(style(f"embeddings: {result['status']}{where} ({result['message']})"))
        return result["status"]
