"""Adapters' bytes in the database (AdapterBlob), so that a serving worker on another host, with its own
disk, can fetch one by version. Existing versions are backfilled from SWARM_ADAPTER_DIR: a version whose
file is missing, or no longer has its recorded SHA-256, is skipped quietly (it keeps serving where its file
is; docs/OPERATIONS.md says how to find such versions)."""

import hashlib
from pathlib import Path

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def backfill(apps, schema_editor):
    AdapterVersion = apps.get_model("training", "AdapterVersion")
    AdapterBlob = apps.get_model("training", "AdapterBlob")
    folder = Path(settings.SWARM_ADAPTER_DIR)
    for adapter in AdapterVersion.objects.filter(blob__isnull=True).order_by("number").iterator(chunk_size=16):
        path = folder / adapter.path
        try:
            data = path.read_bytes()  # one adapter (a few MB) in memory at a time
        except OSError:
            continue
        if hashlib.sha256(data).hexdigest() != adapter.sha256:
            continue
        AdapterBlob.objects.create(adapter=adapter, data=data)


class Migration(migrations.Migration):
    dependencies = [("training", "0003_poll_every_2s")]

    operations = [
        migrations.CreateModel(
            name="AdapterBlob",
            fields=[
                (
                    "adapter",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="blob",
                        serialize=False,
                        to="training.adapterversion",
                    ),
                ),
                ("data", models.BinaryField()),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
