"""python manage.py budget_provider NAME --base-url ... : add or change a cloud provider (keys stay in the env)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.core.management.base import BaseCommand, CommandError

from budget.models import Provider


def _usd(value: str) -> Decimal:
    try:
        return Decimal(value)
    except InvalidOperation:
        raise CommandError(f"{value!r} is not a price") from None


class Command(BaseCommand):
    help = "Create or update a cloud provider of the retry chain."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--base-url")
        parser.add_argument("--model")
        parser.add_argument("--key-env", help="name of the environment variable holding the API key")
        parser.add_argument("--price-in", type=_usd, help="USD per 1M prompt tokens")
        parser.add_argument("--price-out", type=_usd, help="USD per 1M completion tokens")
        parser.add_argument("--order", type=int)
        parser.add_argument("--timeout", type=float)
        state = parser.add_mutually_exclusive_group()
        state.add_argument("--enable", action="store_true")
        state.add_argument("--disable", action="store_true")
        parser.add_argument("--only", action="store_true", help="disable every other provider")

    def handle(self, *args, name: str, **opts):
        fields = {
            "base_url": opts["base_url"], "model": opts["model"], "api_key_env": opts["key_env"],
            "price_input_per_mtok": opts["price_in"], "price_output_per_mtok": opts["price_out"],
            "order": opts["order"], "timeout_s": opts["timeout"],
        }  # fmt: skip
        fields = {k: v for k, v in fields.items() if v is not None}
        if opts["enable"] or opts["disable"]:
            fields["enabled"] = bool(opts["enable"])
        provider = Provider.objects.filter(name=name).first()
        if provider is None:
            required = {"base_url", "model", "api_key_env", "price_input_per_mtok", "price_output_per_mtok"}
            missing = required - set(fields)
            if missing:
                raise CommandError(f"a new provider needs {', '.join(sorted(missing))}")
            provider = Provider.objects.create(name=name, **fields)
        else:
            Provider.objects.filter(pk=provider.pk).update(**fields)
        if opts["only"]:
            Provider.objects.exclude(pk=provider.pk).update(enabled=False)
        provider.refresh_from_db()
        self.stdout.write(self.style.SUCCESS(
            f"{provider.name}: {provider.model} at {provider.base_url}, key from ${provider.api_key_env}, "
            f"${provider.price_input_per_mtok}/${provider.price_output_per_mtok} per 1M tokens, "
            f"order {provider.order}, {'enabled' if provider.enabled else 'disabled'}"
        ))  # fmt: skip
