"""Pattern state shared through Redis: the version every index watches, and hit counters.

- `swarm:patterns:version` (INCR): bumped after anything changes which heads answer what (a mining
  run that created, updated or retired a head; an admin edit or disable). Every process holding an
  index compares it at most once per `SWARM_PATTERN_RELOAD_S` and rebuilds from the database when it moved.
- `swarm:patterns:hits` (hash head id -> count): each process counts its pattern answers in memory and
  adds them here with its next version check (one pipelined round trip, at most once per reload interval,
  and at exit), so a hit costs no Redis call and no database write on the hot path; each mining run
  moves the counts into `PatternHead.hits`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from django.db.models import F

from swarm_site.redis_client import REDIS_ERRORS, get_redis

log = logging.getLogger(__name__)

VERSION_KEY = "swarm:patterns:version"
HITS_KEY = "swarm:patterns:hits"
LOCK_KEY = "swarm:patterns:mining-lock"


def current_version() -> str | None:
    """The published version (None when never bumped). Raises a Redis error when Redis is down."""
    return get_redis().get(VERSION_KEY)


def bump_version() -> int | None:
    """Tell every process to rebuild its index; None (and a warning) when Redis is unreachable."""
    try:
        return int(get_redis().incr(VERSION_KEY))
    except REDIS_ERRORS as exc:
        log.warning("could not bump %s (indexes reload at the next bump): %s", VERSION_KEY, exc)
        return None


def version_after_hits(hits: Mapping[int, int]) -> str | None:
    """Add `hits` (head id -> count) to the shared counters and read the version, in one round trip.

    Raises a Redis error when Redis is down (nothing was added then: the pipeline is sent as a whole).
    """
    pipe = get_redis().pipeline(transaction=False)
    for head_id, count in hits.items():
        pipe.hincrby(HITS_KEY, str(head_id), count)
    pipe.get(VERSION_KEY)
    return pipe.execute()[-1]


def record_hits(hits: Mapping[int, int]) -> None:
    """Add `hits` to the shared counters; failures ignored (a lost count is harmless)."""
    if not hits:
        return
    try:
        version_after_hits(hits)
    except REDIS_ERRORS as exc:
        log.debug("%d hit counts lost: %s", sum(hits.values()), exc)


def pending_hits() -> dict[int, int]:
    """Hits counted in Redis and not yet flushed to the database ({} when Redis is down)."""
    try:
        raw = get_redis().hgetall(HITS_KEY)
    except REDIS_ERRORS:
        return {}
    return {int(k): int(v) for k, v in raw.items() if str(k).isdigit()}


def flush_hits() -> int:
    """Move the Redis hit counts into PatternHead.hits; returns how many hits moved.

    Each count is subtracted from Redis (HINCRBY -n) only after the database has it, so hits that
    arrive meanwhile are kept for the next flush; a crash between the two counts a hit twice at worst.
    """
    from mining.models import PatternHead

    moved = 0
    redis = get_redis()
    for head_id, count in pending_hits().items():
        if count <= 0:
            continue
        PatternHead.objects.filter(pk=head_id).update(hits=F("hits") + count)
        redis.hincrby(HITS_KEY, str(head_id), -count)
        moved += count
    try:
        # Drop the fields that reached zero (atomically: a hit arriving meanwhile is kept).
        redis.eval(_DROP_ZEROS, 1, HITS_KEY)
    except REDIS_ERRORS as exc:
        log.debug("could not tidy %s: %s", HITS_KEY, exc)
    return moved


_DROP_ZEROS = """
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  if fields[i + 1] == '0' then redis.call('HDEL', KEYS[1], fields[i]) end
end
return 1
"""
