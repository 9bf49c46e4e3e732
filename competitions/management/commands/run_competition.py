"""Run a replay competition in the foreground, with a progress line; Ctrl-C stops cleanly."""

import signal
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from competitions.models import Competition
from competitions.rounds.replay import ReplayProgress, replay_run
from competitions.rounds.claim import RoundBusy
from gauntlet.errors import DomainError


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class Command(BaseCommand):
    help = (
        "Run a replay competition: --rounds N rounds, or --until-end. Stop with Ctrl-C (after the "
        "current round) and run again to resume where it stopped."
    )

    def add_arguments(self, parser):
        parser.add_argument("competition_id", type=int)
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--rounds", type=int, help="run this many rounds, then stop")
        group.add_argument("--until-end", action="store_true", help="run until the replay clock reaches end_time")
        parser.add_argument("--pace", type=float, default=0.0, help="seconds to wait between rounds")

    def handle(self, *args, competition_id, rounds, until_end, pace, **options):
        if not Competition.objects.filter(pk=competition_id).exists():
            raise CommandError(f"no competition with id {competition_id}")
        if rounds is not None and rounds < 1:
            raise CommandError("--rounds must be at least 1")
        stop_requested = []

        def request_stop(signum, frame):
            if stop_requested:
                raise KeyboardInterrupt
            stop_requested.append(True)
            self.stderr.write("\nstopping after the current round (Ctrl-C again to abort now)")

        previous_handler = signal.signal(signal.SIGINT, request_stop)
        try:
            progress = replay_run(
                competition_id=competition_id, rounds=rounds, until_end=until_end or rounds is None,
                pace_seconds=pace, on_round=self._show, should_stop=lambda: bool(stop_requested),
            )
        except RoundBusy as exc:
            raise CommandError(
                f"{exc}; it is probably running elsewhere (a dead runner's lease expires after "
                f"{settings.ROUND_LEASE_SECONDS} s, then run this again to resume)"
            ) from exc
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        finally:
            signal.signal(signal.SIGINT, previous_handler)
        self._show(progress)
        sys.stdout.write("\n")
        state = "completed" if progress.finished else ("stopped" if stop_requested else progress.status)
        self.stdout.write(
            f"competition {competition_id} {state}: {progress.rounds_done}/{progress.rounds_total} rounds, "
            f"market time {progress.market_time}, LLM cost ${progress.llm_cost_usd}"
        )

    def _show(self, progress: ReplayProgress) -> None:
        total = max(progress.rounds_total, 1)
        width = 30
        filled = int(width * progress.rounds_done / total)
        bar = "#" * filled + "-" * (width - filled)
        line = (
            f"\r[{bar}] {progress.rounds_done}/{progress.rounds_total} rounds  market {progress.market_time}  "
            f"ETA {_duration(progress.eta_seconds)}  LLM ${progress.llm_cost_usd}"
        )
        self.stdout.write(line, ending="")
        self.stdout.flush()
