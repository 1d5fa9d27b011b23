"""The default retry chain (config only: used when SWARM_CLOUD_ENABLED=true and the keys are set)."""

from decimal import Decimal

from django.db import migrations

DEFAULT_CHAIN = [
    {"name": "mistral-medium", "base_url": "https://api.mistral.ai/v1", "model": "mistral-medium-latest",
     "api_key_env": "MISTRAL_API_KEY", "price_input_per_mtok": Decimal("0.40"),
     "price_output_per_mtok": Decimal("2.00"), "order": 10},
    {"name": "gpt-4o-mini", "base_url": "https://api.openai.com/v1", "model": "gpt-4o-mini",
     "api_key_env": "OPENAI_API_KEY", "price_input_per_mtok": Decimal("0.15"),
     "price_output_per_mtok": Decimal("0.60"), "order": 20},
]  # fmt: skip


def forwards(apps, schema_editor):
    Provider = apps.get_model("budget", "Provider")
    BudgetPolicy = apps.get_model("budget", "BudgetPolicy")
    for fields in DEFAULT_CHAIN:
        Provider.objects.get_or_create(name=fields["name"], defaults=fields)
    BudgetPolicy.objects.get_or_create(pk=1)


def backwards(apps, schema_editor):
    apps.get_model("budget", "Provider").objects.filter(name__in=[p["name"] for p in DEFAULT_CHAIN]).delete()


class Migration(migrations.Migration):
    dependencies = [("budget", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
