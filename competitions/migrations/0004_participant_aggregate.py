"""ParticipantAggregate (competitions.aggregates), folded from scratch for every existing participant.

The backfill runs the live fold (competitions.aggregates.participants_fold): it reads only
explicitly named columns of participants, accounts, fills, positions and equity snapshots.
On an empty database (tests, a fresh install) it does nothing.
"""

import datetime
import django.db.models.deletion
import django.db.models.expressions
from django.db import migrations, models


def fold_existing(apps, schema_editor):
    Participant = apps.get_model("competitions", "Participant")
    competition_ids = list(
        Participant.objects.filter(account__isnull=False).values_list("competition_id", flat=True).distinct()
    )
    if not competition_ids:
        return
    from competitions.aggregates import participants_fold

    for competition_id in competition_ids:
        participants_fold(competition_id=competition_id, rebuild=True)


class Migration(migrations.Migration):

    dependencies = [
        ('competitions', '0003_beat_tick_task'),
        ('trading', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='ParticipantAggregate',
            fields=[
                ('participant', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='aggregate', serialize=False, to='competitions.participant')),
                ('snapshot_watermark', models.BigIntegerField(default=0)),
                ('fill_watermark', models.BigIntegerField(default=0)),
                ('trade_watermark', models.BigIntegerField(default=0)),
                ('net_exposure', models.JSONField(blank=True, default=list)),
                ('last_point_at', models.DateTimeField(blank=True, null=True)),
                ('last_point_sign', models.SmallIntegerField(default=0)),
                ('long_points', models.PositiveIntegerField(default=0)),
                ('short_points', models.PositiveIntegerField(default=0)),
                ('flat_points', models.PositiveIntegerField(default=0)),
                ('trades', models.PositiveIntegerField(default=0)),
                ('wins', models.PositiveIntegerField(default=0)),
                ('losses', models.PositiveIntegerField(default=0)),
                ('pnl_sums', models.JSONField(blank=True, default=dict)),
                ('holding_trades', models.PositiveIntegerField(default=0)),
                ('holding_total', models.DurationField(default=datetime.timedelta(0))),
                ('holdings', models.JSONField(blank=True, default=list)),
                ('updated_at', models.DateTimeField(auto_now=True)),
            ],
            options={
                'constraints': [models.CheckConstraint(condition=models.Q(('last_point_sign__gte', -1), ('last_point_sign__lte', 1)), name='aggregate_sign_valid'), models.CheckConstraint(condition=models.Q(('trades__gte', django.db.models.expressions.CombinedExpression(models.F('wins'), '+', models.F('losses')))), name='aggregate_wins_losses_within_trades'), models.CheckConstraint(condition=models.Q(('trades__gte', models.F('holding_trades'))), name='aggregate_holdings_within_trades')],
            },
        ),
        migrations.RunPython(fold_existing, migrations.RunPython.noop, elidable=True),
    ]
