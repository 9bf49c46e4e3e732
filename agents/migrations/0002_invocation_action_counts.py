"""Invocation.actions_count / rejected_actions_count, counted for every stored invocation.

The counting rule is frozen here as it was when the columns were added (the live one is
agents.services.action_counts): one entry per action index, a later entry for the
same index replacing the earlier one, "rejected" entries counted as rejected.
"""

import json

from django.db import migrations, models

BATCH = 2000


def _counts(outcomes) -> tuple[int, int]:
    if isinstance(outcomes, str):  # a backend that returned the JSON string encoded once more
        try:
            outcomes = json.loads(outcomes)
        except ValueError:
            return 0, 0
        return _counts(outcomes) if isinstance(outcomes, (list, str)) else (0, 0)
    if not isinstance(outcomes, list):
        return 0, 0
    last = {}
    for position, item in enumerate(outcomes):
        if isinstance(item, dict):
            last[item.get("index", f"#{position}")] = str(item.get("status", ""))
    return len(last), sum(1 for status in last.values() if status == "rejected")


def count_actions(apps, schema_editor):
    Invocation = apps.get_model("agents", "Invocation")
    pending = Invocation.objects.filter(actions_count__isnull=True).order_by("id")
    last_id = 0
    while True:
        batch = list(pending.filter(id__gt=last_id).only("id", "action_outcomes")[:BATCH])
        if not batch:
            return
        for invocation in batch:
            invocation.actions_count, invocation.rejected_actions_count = _counts(invocation.action_outcomes)
        Invocation.objects.bulk_update(batch, ["actions_count", "rejected_actions_count"])
        last_id = batch[-1].id


class Migration(migrations.Migration):

    dependencies = [
        ("agents", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="invocation",
            name="actions_count",
            field=models.PositiveIntegerField(
                blank=True, help_text="Actions proposed (holds excluded)", null=True
            ),
        ),
        migrations.AddField(
            model_name="invocation",
            name="rejected_actions_count",
            field=models.PositiveIntegerField(
                blank=True, help_text="Proposed actions the validator or the engine rejected", null=True
            ),
        ),
        migrations.AddConstraint(
            model_name="invocation",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("actions_count__isnull", True), ("rejected_actions_count__isnull", True)),
                    ("rejected_actions_count__lte", models.F("actions_count")),
                    _connector="OR",
                ),
                name="invocation_rejected_within_actions",
            ),
        ),
        migrations.RunPython(count_actions, migrations.RunPython.noop, elidable=True),
    ]
