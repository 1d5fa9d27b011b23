"""python manage.py prefetch_models [ALIAS ...] [--force]: fetch and verify model files."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from inference.fetch import FetchError, prefetch
from inference.integrity import IntegrityError
from inference.registry import RegistryError, load_registry


class Command(BaseCommand):
    help = "Fetch the registry's models (or the named ones) into SWARM_MODEL_DIR and verify their SHA-256."

    def add_arguments(self, parser):
        parser.add_argument("aliases", nargs="*", help="models to fetch (default: all in the registry)")
        parser.add_argument("--force", action="store_true", help="download again even if a file is present")
        parser.add_argument("--no-progress", action="store_true", help="no progress bars")

    def handle(self, *args, aliases: list[str], force: bool, no_progress: bool, **options):
        try:
            registry = load_registry()
            specs = [registry.get(a) for a in aliases] if aliases else list(registry.models.values())
            results = prefetch(
                specs, model_dir=settings.SWARM_MODEL_DIR, show_progress=not no_progress, force=force
            )
        except (RegistryError, FetchError, IntegrityError) as exc:
            raise CommandError(str(exc)) from None
        for result in results:
            style = self.style.WARNING if result.status == "skipped" else self.style.SUCCESS
            self.stdout.write(style(f"{result.alias}: {result.status} {result.path} ({result.message})"))
