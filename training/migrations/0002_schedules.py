"""The beat schedules of the distillation loop, as django-celery-beat rows (editable in admin)."""

from django.db import migrations
from django.utils import timezone

NIGHTLY = "lora distillation nightly at 02:00"
POLL = "lora queue file every 10s"
JUDGE = "lora canary judge every minute"


def create_schedules(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    at_two, _ = CrontabSchedule.objects.get_or_create(
        minute="0", hour="2", day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
    )
    every_10s, _ = IntervalSchedule.objects.get_or_create(every=10, period="seconds")
    every_minute, _ = IntervalSchedule.objects.get_or_create(every=1, period="minutes")
    PeriodicTask.objects.update_or_create(
        name=NIGHTLY,
        defaults={"task": "training.tasks.nightly", "crontab": at_two, "interval": None, "enabled": True,
                  "description": "Distil the day's trusted answers into a LoRA adapter (training/services.py)."},
    )  # fmt: skip
    PeriodicTask.objects.update_or_create(
        name=POLL,
        defaults={"task": "training.tasks.poll_queue_file", "interval": every_10s, "enabled": True,
                  "expire_seconds": 10,
                  "description": "Jobs written to tasks/lora_queue.json become training jobs."},
    )  # fmt: skip
    PeriodicTask.objects.update_or_create(
        name=JUDGE,
        defaults={"task": "training.tasks.judge_canary", "interval": every_minute, "enabled": True,
                  "expire_seconds": 60,
                  "description": "Promote or roll back the canary adapter (training/rollout.py)."},
    )  # fmt: skip
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def delete_schedules(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[NIGHTLY, POLL, JUDGE]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("training", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedules, delete_schedules)]
