"""python manage.py gpu_worker --gpu N: a serving worker pinned to one device.

Consumes `gpu.<N>` (`gpu.<node>.<N>` when SWARM_NODE names the host) and `gpu` with `--slots` serving
processes (SWARM_MODEL_SLOTS, default 1), each holding its own copy of the model and taking one task at a
time (prefetch 1, late acks). On a machine without a GPU the same worker runs the model on the CPU.
"""

from __future__ import annotations

import os
import socket
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from swarm_site.queues import CeleryQueue


def gpu_worker_argv(*, gpu: int, loglevel: str, extra_queues: list[str], slots: int = 1) -> list[str]:
    host = settings.SWARM_NODE
    queues = [CeleryQueue.gpu(gpu, host), CeleryQueue.GPU.value, *extra_queues]
    return [
        sys.executable, "-m", "celery", "-A", "swarm_site", "worker",
        "--pool=prefork", f"--concurrency={slots}", "--prefetch-multiplier=1",
        "-Q", ",".join(queues), "-n", f"gpu{gpu}@{host or '%h'}", f"--loglevel={loglevel}",
    ]  # fmt: skip


def gpu_worker_env(*, gpu: int, queues: str, slots: int = 1, base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env["SWARM_MODEL_SLOTS"] = str(slots)  # the serving processes share the cores (llama.model_threads)
    env["CUDA_VISIBLE_DEVICES"] = str(gpu)
    env.setdefault("PYTORCH_CUDA_ALLOC_CONF", "max_split_size_mb:128")
    env["SWARM_WORKER_ROLE"] = "gpu"
    env["SWARM_WORKER_NAME"] = f"gpu{gpu}@{settings.SWARM_NODE or socket.gethostname()}"
    env["SWARM_WORKER_QUEUES"] = queues
    return env


class Command(BaseCommand):
    help = "Start a serving worker pinned to one GPU (CPU when there is none)."

    def add_arguments(self, parser):
        parser.add_argument("--gpu", type=int, default=int(os.environ.get("SWARM_GPU", "0")))
        parser.add_argument("--loglevel", default="INFO")
        parser.add_argument("--extra-queue", action="append", default=[], help="also consume this queue")
        parser.add_argument("--slots", type=int, default=settings.SWARM_MODEL_SLOTS,
                            help="serving processes, each with its own model copy (SWARM_MODEL_SLOTS)")  # fmt: skip

    def handle(self, *args, gpu: int, loglevel: str, extra_queue: list[str], slots: int, **options):
        if slots < 1:
            raise CommandError("--slots must be at least 1")
        argv = gpu_worker_argv(gpu=gpu, loglevel=loglevel, extra_queues=extra_queue, slots=slots)
        env = gpu_worker_env(gpu=gpu, queues=argv[argv.index("-Q") + 1], slots=slots)
        self.stdout.write(f"starting {' '.join(argv[2:])} with CUDA_VISIBLE_DEVICES={gpu}")
        sys.stdout.flush()
        os.execvpe(argv[0], argv, env)  # noqa: S606 - replaces this process with the worker
