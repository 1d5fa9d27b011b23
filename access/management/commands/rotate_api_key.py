"""python manage.py rotate_api_key PREFIX_OR_NAME: a new secret for a key; the old one stops at once."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from access.models import ApiKey
from access.services import api_key_rotate


class Command(BaseCommand):
    help = "Rotate an API key: print its new secret once; limits, budget and history stay with the key."

    def add_arguments(self, parser):
        parser.add_argument("key", help="the key's name, or the first characters of its secret (its prefix)")

    def handle(self, *args, key: str, **options):
        found = list(ApiKey.objects.filter(Q(name=key) | Q(prefix=key[:12]), revoked=False)[:2])
        if len(found) != 1:
            raise CommandError(f"{'no' if not found else 'more than one'} live key matches {key!r}")
        self.stdout.write(api_key_rotate(key=found[0]).raw)
