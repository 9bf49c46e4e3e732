"""Round.prices: the mids of each round's snapshot, copied for every existing round.

The copying rule is frozen here as it was when the column was added (the live one is
competitions.aggregates.snapshot_prices): every symbol of the snapshot with a price, the
price as a string.
"""

from django.db import migrations, models
from django.db.models.fields.json import KeyTransform

BATCH = 500


def copy_prices(apps, schema_editor):
    Round = apps.get_model("competitions", "Round")
    pending = Round.objects.filter(prices__isnull=True, snapshot__isnull=False).order_by("id")
    last_id = 0
    while True:
        snapshot_symbols = KeyTransform("symbols", "snapshot__payload")
        rows = list(pending.filter(id__gt=last_id).values_list("id", snapshot_symbols)[:BATCH])
        if not rows:
            return
        rounds = []
        for round_id, symbols in rows:
            prices = {}
            if isinstance(symbols, dict):
                prices = {
                    symbol: str(entry["price"])
                    for symbol, entry in symbols.items()
                    if isinstance(entry, dict) and entry.get("price") not in (None, "")
                }
            rounds.append(Round(id=round_id, prices=prices))
        Round.objects.bulk_update(rounds, ["prices"])
        last_id = rows[-1][0]


class Migration(migrations.Migration):

    dependencies = [
        ("competitions", "0004_participant_aggregate"),
    ]

    operations = [
        migrations.AddField(
            model_name="round",
            name="prices",
            field=models.JSONField(blank=True, editable=False, null=True),
        ),
        migrations.RunPython(copy_prices, migrations.RunPython.noop, elidable=True),
    ]
