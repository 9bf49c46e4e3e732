"""update_rows writes what save() would, for many rows in one go."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from gauntlet.db import update_rows
from trading import services
from trading.models import Account, Position
from trading.tests.factories import ActiveCompetitionFactory, TraderFactory

pytestmark = pytest.mark.django_db


def test_update_rows_writes_decimals_datetimes_json_and_nulls_by_primary_key():
    from agents.models import Invocation
    from competitions.models import Round

    competition = ActiveCompetitionFactory()
    traders = [TraderFactory(competition=competition, name=f"T{n}") for n in range(3)]
    accounts = [services.account_open(participant=trader, initial_capital=Decimal(10000)) for trader in traders]
    moment = datetime(2025, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
    for n, account in enumerate(accounts[:2]):
        account.cash = Decimal("12345.67890123") + n
        account.updated_at = moment
    assert update_rows(Account, accounts[:2], ["cash", "updated_at"]) == 2
    stored = {a.pk: (a.cash, a.updated_at) for a in Account.objects.all()}
    assert stored[accounts[0].pk] == (Decimal("12345.67890123"), moment)
    assert stored[accounts[1].pk] == (Decimal("12346.67890123"), moment)
    assert stored[accounts[2].pk][0] == competition.initial_capital  # untouched

    round_ = Round.objects.create(competition=competition, number=0, market_time=moment)
    rows = [
        Invocation.objects.create(participant=trader, round=round_, provider="scripted", model="s", status="success")
        for trader in traders
    ]
    rows[0].action_outcomes = [{"index": 0, "status": "filled", "fills": [{"price": "1.5"}]}]
    rows[0].actions_count, rows[0].rejected_actions_count = 1, 0
    rows[1].action_outcomes = []
    rows[1].actions_count, rows[1].rejected_actions_count = None, None
    update_rows(Invocation, rows[:2], ["action_outcomes", "actions_count", "rejected_actions_count"])
    first, second, third = (Invocation.objects.get(pk=row.pk) for row in rows)
    assert first.action_outcomes == [{"index": 0, "status": "filled", "fills": [{"price": "1.5"}]}]
    assert (first.actions_count, first.rejected_actions_count) == (1, 0)
    assert second.action_outcomes == [] and second.actions_count is None
    assert third.action_outcomes == third._meta.get_field("action_outcomes").get_default()


def test_update_rows_with_nothing_to_do_sends_nothing(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert update_rows(Position, [], ["quantity"]) == 0


@pytest.mark.parametrize("value", [
    "61852.06229181190123456789",  # more places than the column keeps, more digits than a double
    "0.00001234567890123456789",   # PEPE-sized: the scale decides
    "-1234.56785000000000005",     # a tie a hair above half: away from zero
    "10000",                       # an integer (SQLite stores it as one)
    "123456789012.3456789",        # more significant digits than SQLite keeps
    "0",
])
def test_as_stored_gives_what_a_reload_of_the_row_reads(value):
    """as_stored predicts, without a query, what the database gives back for a value: a
    column's scale on PostgreSQL, 15 significant digits on SQLite (whichever this run is)."""
    from gauntlet.db import as_stored, insert_rows

    competition = ActiveCompetitionFactory()
    account = services.account_open(participant=TraderFactory(competition=competition), initial_capital=Decimal(10000))
    number, positive = Decimal(value), Decimal(value).copy_abs() or Decimal(1)
    row = Position(
        account=account, symbol="BTC/USDT", side="long", quantity=positive, entry_price=positive,
        initial_margin=positive, leverage=Decimal(1), realised_pnl=number, funding=number,
        opened_at=datetime(2025, 3, 4, tzinfo=UTC),
    )
    insert_rows(Position, [row])
    reloaded = Position.objects.get(pk=row.pk)
    names = ["quantity", "entry_price", "initial_margin", "realised_pnl", "funding"]  # three scales
    as_stored(row, names)
    for name in names:
        assert getattr(row, name) == getattr(reloaded, name), name
        assert str(getattr(row, name)) == str(getattr(reloaded, name)), name
    as_stored(row, ["entry_price"])  # taking the stored value again changes nothing
    assert row.entry_price == reloaded.entry_price
