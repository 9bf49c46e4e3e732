"""The Round row as a claim: unique per (competition, number), held under a lease, with the
phase it reached committed step by step so a crashed round resumes after its last step.

The lease owner names its runner "host:pid:token". A runner on the same host whose process
is gone (killed with SIGKILL mid-round) cannot renew its lease, so a restart there takes
the round over at once instead of waiting ROUND_LEASE_SECONDS; a holder on another host
(or one whose owner does not say where it runs) is waited for until its lease expires.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from gauntlet.db import insert_rows

from ..models import Round

logger = logging.getLogger(__name__)

PHASES = ("claimed", "snapshot", "bars", "invoked", "executed", "marked", "completed")


class RoundBusy(Exception):
    """Another runner holds this round's lease; try again after it expires."""


def lease_seconds() -> int:
    """The round lease (settings.ROUND_LEASE_SECONDS), read at call time so tests and workers can set it."""
    return settings.ROUND_LEASE_SECONDS


def _host() -> str:
    return socket.gethostname()[:32]


def lease_owner() -> str:
    """A new owner name for one run of a round: this host, this process, a random token."""
    return f"{_host()}:{os.getpid()}:{uuid.uuid4().hex[:16]}"


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def holder_gone(owner: str) -> bool:
    """True when the lease owner ran on this host in a process that no longer exists."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != _host() or not pid_text.isdigit():
        return False
    return not _pid_alive(int(pid_text))


def phase_done(round_: Round, phase: str) -> bool:
    return PHASES.index(round_.phase) >= PHASES.index(phase)


def phase_set(round_: Round, phase: str, **fields) -> None:
    """Commit the phase reached (and any other fields) and renew the lease: one UPDATE."""
    round_.phase = phase
    round_.lease_expires_at = timezone.now() + timedelta(seconds=lease_seconds())
    for name, value in fields.items():
        setattr(round_, name, value)
    round_.save(update_fields=["phase", "lease_expires_at", "timings", *fields])


def lease_renew(round_: Round) -> None:
    Round.objects.filter(pk=round_.pk).update(lease_expires_at=timezone.now() + timedelta(seconds=lease_seconds()))


class RoundExists(Exception):
    """A batch's round is already there: the batch stops (and is rolled back) to let the
    one-round path deal with it."""


def round_claim(
    *, competition_id: int, number: int, market_time: datetime, owner: str, new_only: bool = False
) -> Round | None:
    """Claim round `number`: a new row, or a running one whose runner's lease ran out or
    whose runner died on this host.

    Returns None when the round already finished (beat fired twice; nothing to do) and
    raises RoundBusy while another runner's lease is still valid. `new_only` (a batch of
    replay rounds in one transaction): only a new row will do, one plain INSERT without a
    savepoint; an existing row raises RoundExists, and the caller's transaction is to be
    rolled back.
    """
    now = timezone.now()
    lease_until = now + timedelta(seconds=lease_seconds())
    fields = {"competition_id": competition_id, "number": number, "market_time": market_time,
              "lease_owner": owner, "lease_expires_at": lease_until}
    if new_only:
        try:
            return insert_rows(Round, [Round(**fields)])[0]
        except IntegrityError as exc:
            raise RoundExists(f"round {number} of competition {competition_id} exists") from exc
    try:
        if transaction.get_connection().in_atomic_block:
            with transaction.atomic():  # a savepoint: a duplicate leaves the caller's transaction usable
                return Round.objects.create(**fields)
        return Round.objects.create(**fields)  # one autocommitted INSERT
    except IntegrityError:
        pass
    round_ = Round.objects.get(competition_id=competition_id, number=number)
    if round_.status != Round.Status.RUNNING:
        return None
    free = Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True) | Q(lease_owner=owner)
    if round_.lease_owner and holder_gone(round_.lease_owner):
        # the same owner as read: a live runner that took it over meanwhile keeps it
        free |= Q(lease_owner=round_.lease_owner)
    taken = (
        Round.objects.filter(pk=round_.pk, status=Round.Status.RUNNING)
        .filter(free)
        .update(lease_owner=owner, lease_expires_at=lease_until)
    )
    if not taken:
        raise RoundBusy(f"round {number} of competition {competition_id} is being run by another runner")
    round_.refresh_from_db()
    logger.warning("resuming round %s of competition %s after phase %s", number, competition_id, round_.phase)
    return round_
