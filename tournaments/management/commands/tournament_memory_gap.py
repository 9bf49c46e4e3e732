"""Print a tournament's memory gap: masked vs unmasked, before vs after each cutoff (issue 16)."""

import json

from django.core.management.base import BaseCommand, CommandError

from gauntlet.errors import DomainError
from tournaments.memory import memory_gap_report
from tournaments.models import Tournament


def _gap(gap: dict | None) -> str:
    if gap is None or gap["value"] is None:
        return "-"
    interval = gap["interval"]
    span = f" [{interval['low']:+.2f} .. {interval['high']:+.2f}]" if interval else ""
    return f"{gap['value']:+.2f} %{span} ({gap['windows']} windows)"


class Command(BaseCommand):
    help = "Per agent: return % unmasked minus masked, and before minus after its training cutoff, with 95 % intervals."

    def add_arguments(self, parser):
        parser.add_argument("tournament_id", type=int)
        parser.add_argument("--masked", type=int, help="The counterpart's id (default: the newest copy with results)")
        parser.add_argument("--json", dest="as_json", action="store_true", help="The API's JSON instead of a table")

    def handle(self, *args, tournament_id, masked=None, as_json=False, **options):
        try:
            report = memory_gap_report(tournament_id=tournament_id, masked_tournament_id=masked)
        except Tournament.DoesNotExist as exc:
            raise CommandError(f"no tournament {tournament_id}") from exc
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        if as_json:
            self.stdout.write(json.dumps(report, indent=2, default=str))
            return
        counterpart = report["masked_tournament_id"] or "none yet"
        self.stdout.write(f"tournament {report['tournament_id']}, masked counterpart {counterpart}; return % a window")
        for agent in report["agents"]:
            self.stdout.write(f"  {agent['agent']}: masked gap {_gap(agent['masked_gap'])}; "
                              f"cutoff gap {_gap(agent['cutoff_gap'])}")
            self.stdout.write(f"    {agent['masked_reading']}")
            self.stdout.write(f"    {agent['cutoff_reading']}")
        if report["note"]:
            self.stdout.write(report["note"])
        for limit in report["limits"]:
            self.stdout.write(f"Limit: {limit}")
