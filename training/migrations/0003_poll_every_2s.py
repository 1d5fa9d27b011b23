"""Read tasks/lora_queue.json every 2 s instead of every 10 s: the nightly drill's job is picked up
within 2 s of the line being written (the run-book's 30 s includes this wait). The read is one stat
of a small file on the cpu queue. A schedule an operator already changed in admin is left alone."""

from django.db import migrations
from django.utils import timezone

OLD_NAME, NEW_NAME = "lora queue file every 10s", "lora queue file every 2s"


def _retime(apps, old_name: str, new_name: str, old_every: int, new_every: int) -> None:
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    task = PeriodicTask.objects.filter(name=old_name).select_related("interval").first()
    if task is None or task.interval is None or (task.interval.every, task.interval.period) != (old_every, "seconds"):
        return  # removed or retimed by an operator: theirs to keep
    task.interval, _ = IntervalSchedule.objects.get_or_create(every=new_every, period="seconds")
    task.name, task.expire_seconds = new_name, new_every
    task.save(update_fields=["interval", "name", "expire_seconds"])
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def forwards(apps, schema_editor):
    _retime(apps, OLD_NAME, NEW_NAME, 10, 2)


def backwards(apps, schema_editor):
    _retime(apps, NEW_NAME, OLD_NAME, 2, 10)


class Migration(migrations.Migration):
    dependencies = [("training", "0002_schedules")]

    operations = [migrations.RunPython(forwards, backwards)]
