"""Register the once-a-minute lifecycle tick with django-celery-beat's database scheduler."""

from django.db import migrations

TICK_NAME = "gauntlet: lifecycle tick and worker heartbeat"
TICK_TASK = "competitions.tasks.competitions_tick_task"


def add_tick(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_minute, _ = IntervalSchedule.objects.get_or_create(every=1, period="minutes")
    PeriodicTask.objects.update_or_create(
        name=TICK_NAME, defaults={"task": TICK_TASK, "interval": every_minute, "enabled": True}
    )


def remove_tick(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TICK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("competitions", "0002_round_snapshot_phase_lease"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(add_tick, remove_tick)]
