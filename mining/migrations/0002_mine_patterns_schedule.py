"""The 6-hourly beat schedule of mining.tasks.mine_patterns, as a django-celery-beat row (editable in admin)."""

from django.db import migrations
from django.utils import timezone

TASK_NAME = "mine patterns every 6h"
TASK = "mining.tasks.mine_patterns"


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    every_6h, _ = IntervalSchedule.objects.get_or_create(every=6, period="hours")
    PeriodicTask.objects.update_or_create(
        name=TASK_NAME,
        defaults={
            "task": TASK,
            "interval": every_6h,
            "enabled": True,
            "description": "Cluster recent trusted prompts into pattern heads (mining/services.py).",
            "expire_seconds": 6 * 3600,  # a run still queued when the next is due is dropped
        },
    )
    # Tell a running beat (DatabaseScheduler) that its schedule changed.
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def delete_schedule(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("mining", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, delete_schedule)]
