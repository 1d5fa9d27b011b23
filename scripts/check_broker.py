#!/usr/bin/env python3
"""Say whether Celery's broker answers, when it is RabbitMQ (CELERY_BROKER_URL=amqp://..., .env included).

`make up` runs it after scripts/ensure_redis.py, which looks after Redis (REDIS_URL, the default broker).
It never starts RabbitMQ. Exit 0 when RabbitMQ answers or the broker is Redis; 1 with the reason.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from swarm_site.broker import main  # after the project root is on the path

if __name__ == "__main__":
    raise SystemExit(main())
