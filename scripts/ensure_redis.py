#!/usr/bin/env python3
"""Make sure the Redis in REDIS_URL answers; start a private one on loopback if it does not.

Only a loopback redis:// URL is ever started here (own data dir under var/redis, bound to 127.0.0.1). A
Sentinel URL (sentinel://...) is only checked: the primary the sentinels name SWARM_REDIS_SENTINEL_MASTER
must answer; nothing is started (a replicated Redis is the operator's, docs/OPERATIONS.md "Redis Sentinel").
Exit 0 when Redis answers, 1 with a message when it cannot be had.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from swarm_site.redis_client import is_sentinel_url, redis_from_url, sentinel_master_name  # noqa: E402 - after the path


def answers(url: str) -> bool:
    try:
        client = redis_from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        return bool(client.ping())
    except (redis.RedisError, OSError, ValueError):
        return False


def install_redis_server() -> str | None:
    """On a Debian-like machine where we are root, install Debian's redis-server package."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None
    print("redis: installing Debian's redis-server package")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=False, env=env)
    install = ["apt-get", "install", "-y", "-q", "-o", "DPkg::Lock::Timeout=600", "redis-server"]
    subprocess.run(install, check=False, env=env)
    return shutil.which("redis-server")


def main() -> int:
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    if answers(url):
        print(f"redis: {url} answers")
        return 0
    if is_sentinel_url(url):
        print(f"redis: the sentinels of {url} name no primary {sentinel_master_name()!r} that answers; a "
              f"Sentinel setup is never started here (check the sentinels, SWARM_REDIS_SENTINEL_MASTER)",
              file=sys.stderr)  # fmt: skip
        return 1
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 6379
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"redis: {url} does not answer and is not local; start it or fix REDIS_URL", file=sys.stderr)
        return 1
    server = shutil.which("redis-server") or install_redis_server()
    if not server:
        print("redis: redis-server is not installed (apt-get install redis-server)", file=sys.stderr)
        return 1
    data = ROOT / "var" / "redis"
    data.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--daemonize", "yes", "--dir", str(data),
         "--logfile", str(data / f"redis-{port}.log"), "--pidfile", str(data / f"redis-{port}.pid"),
         "--save", "", "--appendonly", "no"],
        check=True,
    )  # fmt: skip
    for _ in range(50):
        if answers(url):
            print(f"redis: started a local redis-server on 127.0.0.1:{port} (data in {data})")
            return 0
        time.sleep(0.1)
    log = data / f"redis-{port}.log"
    print(f"redis: started redis-server but {url} still does not answer; see {log}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
