"""API shapes for tournaments. Shape checks only: the rules are the services' to enforce."""

from rest_framework import serializers

from .ports import Participant

from .models import CacheMode, InSampleMode, Tournament, TournamentRun


class EntryWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    llm_provider = serializers.ChoiceField(choices=Participant.Provider.choices)
    llm_model = serializers.CharField(max_length=200)
    llm_config = serializers.JSONField(required=False, default=dict)
    api_key = serializers.CharField(required=False, write_only=True, allow_blank=True, trim_whitespace=True)


class EntrySerializer(serializers.Serializer):
    name = serializers.CharField()
    llm_provider = serializers.CharField()
    llm_model = serializers.CharField()
    llm_config = serializers.JSONField()
    has_api_key = serializers.BooleanField()


class TournamentWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=150)
    description = serializers.CharField(required=False, allow_blank=True)
    rules = serializers.JSONField(required=False, help_text="Competition rules and costs shared by every run")
    dataset = serializers.CharField(max_length=100)
    timeframe = serializers.CharField(max_length=5, required=False)
    symbols = serializers.ListField(child=serializers.CharField(max_length=32), required=False)
    windows_spec = serializers.JSONField(
        help_text='{"windows": [{"start", "end"}]} or {"start", "end", "count", "length_minutes", "step_minutes"}'
    )
    instances = serializers.IntegerField(min_value=1, max_value=1000, required=False)
    seed = serializers.IntegerField(min_value=0, max_value=2**31 - 1 - 1000, required=False)
    cache_mode = serializers.ChoiceField(choices=CacheMode.choices, required=False)
    max_attempts = serializers.IntegerField(min_value=1, max_value=20, required=False)
    in_sample = serializers.ChoiceField(
        choices=InSampleMode.choices, required=False,
        help_text="What rankings do with a window that starts before an agent's training-data cutoff: exclude "
        "(default), apart or include. The one field a started tournament may change (docs/memory.md)",
    )
    entries = EntryWriteSerializer(many=True, required=False)


class WindowSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    start_time = serializers.DateTimeField()
    end_time = serializers.DateTimeField()


class TournamentSerializer(serializers.ModelSerializer):
    entries = EntrySerializer(many=True, read_only=True)
    windows = WindowSerializer(many=True, read_only=True)

    class Meta:
        model = Tournament
        fields = [
            "id", "name", "description", "status", "rules", "dataset", "timeframe", "symbols", "windows_spec",
            "instances", "seed", "cache_mode", "max_attempts", "in_sample", "copy_of", "entries", "windows",
            "created_at", "started_at", "completed_at",
        ]  # fmt: skip


class FailureSerializer(serializers.Serializer):
    run_id = serializers.IntegerField()
    window = serializers.IntegerField()
    instance = serializers.IntegerField()
    attempts = serializers.IntegerField()
    error = serializers.CharField()


class ProgressSerializer(serializers.Serializer):
    status = serializers.CharField()
    runs_total = serializers.IntegerField()
    runs_done = serializers.IntegerField()
    runs_pending = serializers.IntegerField()
    runs_running = serializers.IntegerField()
    runs_completed = serializers.IntegerField()
    runs_failed = serializers.IntegerField()
    runs_cancelled = serializers.IntegerField()
    rounds_done = serializers.IntegerField()
    rounds_total = serializers.IntegerField()
    llm_cost_usd = serializers.CharField()
    cache_hits = serializers.IntegerField()
    failures = FailureSerializer(many=True)


class TournamentDetailSerializer(TournamentSerializer):
    progress = serializers.SerializerMethodField()

    class Meta(TournamentSerializer.Meta):
        fields = TournamentSerializer.Meta.fields + ["progress"]

    def get_progress(self, obj) -> ProgressSerializer:
        from .selectors import tournament_progress

        return tournament_progress(obj.pk).as_dict()


class RunSerializer(serializers.ModelSerializer):
    window = serializers.IntegerField(source="window.index")
    window_start = serializers.DateTimeField(source="window.start_time")
    window_end = serializers.DateTimeField(source="window.end_time")
    competition_id = serializers.IntegerField(allow_null=True)

    class Meta:
        model = TournamentRun
        fields = [
            "id", "window", "window_start", "window_end", "instance", "seed", "status", "attempts", "error",
            "claimed_by", "competition_id", "rounds_done", "llm_cost_usd", "result", "started_at", "finished_at",
            "seconds",
        ]  # fmt: skip


class BundleImportSerializer(serializers.Serializer):
    bundle = serializers.JSONField(help_text="The object GET .../export?what=bundle returned")
    cache_mode = serializers.ChoiceField(choices=CacheMode.choices, required=False)
    allow_other_data = serializers.BooleanField(required=False, default=False)
    api_keys = serializers.DictField(child=serializers.CharField(), required=False, write_only=True,
                                     help_text="Entry name -> provider key for the imported lineup")


class ImportedSerializer(serializers.Serializer):
    tournament = TournamentSerializer()
    warnings = serializers.ListField(child=serializers.CharField())
