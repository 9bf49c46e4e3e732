"""Copy a tournament as a draft with the same lineup and windows, masked or not (issue 16)."""

from django.core.management.base import BaseCommand, CommandError

from gauntlet.errors import DomainError
from tournaments.models import Tournament
from tournaments.services import tournament_copy


class Command(BaseCommand):
    help = (
        "Copy a tournament (lineup with its keys, windows, instances, seed, rules) as a new draft; --masked makes "
        "the masked counterpart whose results the memory gap compares (docs/memory.md). Start it with run_tournament."
    )

    def add_arguments(self, parser):
        parser.add_argument("tournament_id", type=int)
        world = parser.add_mutually_exclusive_group()
        world.add_argument("--masked", dest="masked", action="store_const", const=True, default=None,
                           help="The copy replays a masked world")
        world.add_argument("--unmasked", dest="masked", action="store_const", const=False,
                           help="The copy replays the real market")
        parser.add_argument("--name", help="Name of the copy (default: the name plus (masked) or (unmasked))")

    def handle(self, *args, tournament_id, masked=None, name=None, **options):
        try:
            copy = tournament_copy(tournament_id=tournament_id, masked=masked, name=name)
        except Tournament.DoesNotExist as exc:
            raise CommandError(f"no tournament {tournament_id}") from exc
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        world = "masked" if (copy.rules or {}).get("masked") else "unmasked"
        self.stdout.write(f"tournament {copy.pk} ({copy.name}): {world} copy of {tournament_id}, a draft. "
                          f"Run it: manage.py run_tournament {copy.pk}")
