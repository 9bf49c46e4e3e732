"""The worker heartbeat: whoever runs rounds (a Celery worker through beat's tick, or the
in-process runner) writes it; the health check reads it. One key, one format."""

from django.core.cache import cache
from django.utils import timezone

from gauntlet.timefmt import iso_utc

WORKER_HEARTBEAT_KEY = "gauntlet:worker-heartbeat"


def worker_heartbeat() -> None:
    cache.set(WORKER_HEARTBEAT_KEY, iso_utc(timezone.now()), timeout=None)


def worker_heartbeat_get():
    """What the last heartbeat wrote (an ISO-8601 text, or a timestamp from older writers), or None."""
    return cache.get(WORKER_HEARTBEAT_KEY)
