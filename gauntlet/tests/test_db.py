"""update_rows writes what save() would, for many rows in one go; new_row makes what the
model's constructor makes."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from gauntlet.db import new_row, update_rows
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


def _fields(obj):
    return {name: value for name, value in vars(obj).items() if name != "_state"}


def test_new_row_makes_what_the_models_own_constructor_makes():
    from agents.models import Invocation
    from trading.models import EquitySnapshot, LedgerEntry

    account = Account(pk=4, participant_id=2, initial_capital=Decimal(1000), cash=Decimal(900))
    at = datetime(2025, 1, 2, tzinfo=UTC)
    made = [
        (EquitySnapshot, {"account": account, "market_time": at, "equity": Decimal("1.5"), "cash": Decimal(1)}),
        (LedgerEntry, {"account": account, "kind": "fee", "amount": Decimal("-0.1"), "market_time": at}),
        (Invocation, {"participant_id": 3, "round_id": 5, "model": "m", "user_prompt": "hi", "action_outcomes": [{"index": 0}]}),
    ]
    for model, values in made:
        fast, slow = new_row(model, **values), model(**values)
        assert _fields(fast) == _fields(slow)
        assert (fast._state.adding, fast._state.db) == (slow._state.adding, slow._state.db)
        assert fast._state.fields_cache == slow._state.fields_cache
    invocation = new_row(Invocation, participant_id=3, round_id=5)
    assert invocation.action_outcomes == [] and invocation.action_outcomes is not new_row(Invocation).action_outcomes


def test_new_row_refuses_what_the_model_would_refuse():
    from trading.models import EquitySnapshot, LedgerEntry

    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        new_row(EquitySnapshot, colour="red")
    with pytest.raises(ValueError):  # a related object of another model, as the descriptor refuses it
        new_row(LedgerEntry, account=EquitySnapshot(market_time=datetime(2025, 1, 2, tzinfo=UTC)))


def test_new_row_leaves_a_model_someone_listens_to_to_its_own_constructor():
    from django.db.models.signals import post_init

    from trading.models import EquitySnapshot

    seen = []

    def listener(sender, instance, **kwargs):
        seen.append(instance)

    post_init.connect(listener, sender=EquitySnapshot)
    try:
        row = new_row(EquitySnapshot, round_number=3)
    finally:
        post_init.disconnect(listener, sender=EquitySnapshot)
    assert seen == [row]
    assert new_row(EquitySnapshot, round_number=4) not in seen


def test_insert_rows_stores_every_value_exactly_and_reads_the_ids_back_in_order():
    """Several rows at once (on PostgreSQL: UNNEST of one array per column, bound in binary),
    with the characters an array's text form would have to escape."""
    from agents.models import Invocation
    from competitions.models import Round
    from gauntlet.db import insert_rows

    competition = ActiveCompetitionFactory()
    traders = [TraderFactory(competition=competition, name=f"T{n}") for n in range(3)]
    round_ = Round.objects.create(competition=competition, number=0, market_time=datetime(2025, 3, 4, tzinfo=UTC))
    texts = ['{"a": [1, 2]}, \\ "quoted" ,NULL', "", "naïve — ✓ 'single' {braces}"]
    rows = [
        new_row(Invocation, participant_id=trader.pk, round_id=round_.pk, provider="scripted", model="m",
                user_prompt=text, raw_response=text, status="success", cost_usd=Decimal("0.00012345"),
                action_outcomes=[{"index": n, "reason": text}] if n != 1 else [], latency_ms=n,
                actions_count=None if n == 1 else n)
        for n, (trader, text) in enumerate(zip(traders, texts, strict=True))
    ]
    insert_rows(Invocation, rows)
    assert all(row.pk is not None and not row._state.adding for row in rows)
    for n, row in enumerate(rows):
        stored = Invocation.objects.get(pk=row.pk)
        assert (stored.participant_id, stored.user_prompt, stored.raw_response) == (traders[n].pk, texts[n], texts[n])
        assert stored.action_outcomes == row.action_outcomes and stored.cost_usd == Decimal("0.00012345")
        assert (stored.latency_ms, stored.actions_count) == (n, None if n == 1 else n)
