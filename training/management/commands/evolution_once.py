"""`manage.py evolution_once [--wait]`: queue the nightly distillation run now (make evolution-once)."""

from __future__ import annotations

import json
import time

from django.core.management.base import BaseCommand, CommandError

from training import services
from training.models import TrainingJob


class Command(BaseCommand):
    help = "Queue a LoRA distillation job on the trusted log now (the 02:00 job), optionally waiting for it."

    def add_arguments(self, parser):
        parser.add_argument("--prompt", action="append", default=[], help="train on these prompts instead of the log")
        parser.add_argument("--name", default="evolution-once")
        parser.add_argument("--param", action="append", default=[], help="training override, e.g. max_steps=20")
        parser.add_argument("--wait", type=float, default=0.0, help="seconds to wait for the job to finish")

    def handle(self, *args, prompt: list[str], name: str, param: list[str], wait: float, **options):
        params = {}
        for item in param:
            key, sep, value = item.partition("=")
            if not sep:
                raise CommandError(f"--param takes key=value; got {item!r}")
            params[key.strip()] = value.strip()
        try:
            job = services.create_job(name, prompt, source=TrainingJob.Source.COMMAND, params=params)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"queued training job {job.pk} ({job.name}) on the train queue")
        deadline = time.monotonic() + wait
        while wait and time.monotonic() < deadline:
            job.refresh_from_db()
            if job.status not in (TrainingJob.Status.QUEUED, TrainingJob.Status.RUNNING):
                break
            time.sleep(1.0)
        job.refresh_from_db()
        self.stdout.write(json.dumps({"job": job.pk, "status": job.status, "detail": job.detail}, indent=2))
        if wait and job.status in (TrainingJob.Status.FAILED, TrainingJob.Status.QUEUED, TrainingJob.Status.RUNNING):
            raise CommandError(f"job {job.pk} is {job.status}")
