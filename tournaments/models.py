"""Tournaments: one lineup replayed over many windows, K seeded instances per window.

A tournament expands into runs, one per (window, instance); each run is an ordinary replay
competition holding the whole lineup (a paired design: every agent sees the same market in
the same run). The runs reuse the round machinery; this app only plans, claims and counts.
"""

from decimal import Decimal

from django.db import models
from django.db.models import F, Q

from gauntlet.secrets import decrypt_secret


class TournamentStatus(models.TextChoices):
    DRAFT = "draft"
    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class CacheMode(models.TextChoices):
    OFF = "off", "Off"
    READ_WRITE = "read_write", "Read and write"
    READ_ONLY = "read_only", "Read only (a miss is an error)"


class InSampleMode(models.TextChoices):
    """How rankings treat a window that starts before an agent's training cutoff (docs/memory.md)."""

    EXCLUDE = "exclude", "Leave in-sample windows out (default)"
    APART = "apart", "Rank in-sample windows apart"
    INCLUDE = "include", "Include in-sample windows"


class RunStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Tournament(models.Model):
    Status = TournamentStatus
    CacheMode = CacheMode
    InSample = InSampleMode

    name = models.CharField(max_length=150)
    description = models.TextField(blank=True)
    # Every competition rule and cost field except the ones a run sets itself (name, times,
    # seed, mode, dataset, timeframe, symbols); checked by competitions.services.competition_create.
    rules = models.JSONField(default=dict, blank=True)
    dataset = models.CharField(max_length=100)
    timeframe = models.CharField(max_length=5, default="1h")
    symbols = models.JSONField(default=list, blank=True)
    # {"windows": [{"start": iso, "end": iso}, ...]} or
    # {"start": iso, "end": iso, "count": n, "length_minutes": m, "step_minutes": s}
    windows_spec = models.JSONField(default=dict, blank=True)
    instances = models.PositiveIntegerField(default=1, help_text="Seeded instances per window (K)")
    seed = models.PositiveIntegerField(default=0, help_text="Instance k runs with seed + k")
    cache_mode = models.CharField(max_length=10, choices=CacheMode.choices, default=CacheMode.READ_WRITE)
    max_attempts = models.PositiveSmallIntegerField(default=3, help_text="Tries per run before it fails")
    in_sample = models.CharField(
        max_length=8, choices=InSampleMode.choices, default=InSampleMode.EXCLUDE,
        help_text="A window that starts before an agent's training-data cutoff may be answered from memory: "
        "leave it out of that agent's ranking (default), rank it apart, or include it. Pages and the API can ask "
        "for another view.",
    )
    # The tournament this one was copied from (tournament_copy: same lineup and windows, e.g. masked):
    # the memory gap compares the two.
    copy_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="copies", editable=False
    )
    status = models.CharField(max_length=10, choices=TournamentStatus.choices, default=TournamentStatus.DRAFT)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=TournamentStatus.values), name="tournament_status_valid"),
            models.CheckConstraint(condition=Q(cache_mode__in=CacheMode.values), name="tournament_cache_mode_valid"),
            models.CheckConstraint(condition=Q(in_sample__in=InSampleMode.values), name="tournament_in_sample_valid"),
            models.CheckConstraint(
                condition=Q(instances__gte=1, instances__lte=1000), name="tournament_instances_1_to_1000"
            ),
            models.CheckConstraint(
                condition=Q(max_attempts__gte=1, max_attempts__lte=20), name="tournament_attempts_1_to_20"
            ),
            models.CheckConstraint(condition=~Q(dataset=""), name="tournament_needs_dataset"),
        ]

    def __str__(self):
        return self.name

    @property
    def is_draft(self) -> bool:
        return self.status == TournamentStatus.DRAFT


class TournamentEntry(models.Model):
    """One agent of the lineup; registered as a participant in every run."""

    tournament = models.ForeignKey(Tournament, on_delete=models.CASCADE, related_name="entries")
    name = models.CharField(max_length=100)
    llm_provider = models.CharField(max_length=32)
    llm_model = models.CharField(max_length=200)
    llm_config = models.JSONField(default=dict, blank=True)
    # Fernet token (gauntlet.secrets), as on Participant: never rendered, exported or logged.
    api_key_encrypted = models.TextField(blank=True, default="", editable=False)

    class Meta:
        ordering = ["tournament_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tournament", "name"], name="tournament_entry_name_unique"),
            models.CheckConstraint(condition=~Q(name=""), name="tournament_entry_name_not_empty"),
        ]

    def __str__(self):
        return f"{self.name} ({self.llm_provider}/{self.llm_model})"

    def __repr__(self):
        return f"<TournamentEntry {self.pk} {self.name!r}>"

    @property
    def has_api_key(self) -> bool:
        return bool(self.api_key_encrypted)

    def api_key(self) -> str | None:
        return decrypt_secret(self.api_key_encrypted)


class TournamentWindow(models.Model):
    """A market-time span every instance of the tournament replays."""

    tournament = models.ForeignKey(Tournament, on_delete=models.CASCADE, related_name="windows")
    index = models.PositiveIntegerField()
    start_time = models.DateTimeField()
    end_time = models.DateTimeField()

    class Meta:
        ordering = ["tournament_id", "index"]
        constraints = [
            models.UniqueConstraint(fields=["tournament", "index"], name="tournament_window_unique_index"),
            models.CheckConstraint(condition=Q(end_time__gt=F("start_time")), name="tournament_window_end_after_start"),
        ]

    def __str__(self):
        return f"window {self.index}: {self.start_time:%Y-%m-%d %H:%M} .. {self.end_time:%Y-%m-%d %H:%M}"


class TournamentRun(models.Model):
    """One (window, instance): a replay competition. The unique row is the claim: a run is
    executed by whoever moves it to running, and by nobody else while its lease holds."""

    Status = RunStatus

    tournament = models.ForeignKey(Tournament, on_delete=models.CASCADE, related_name="runs")
    window = models.ForeignKey(TournamentWindow, on_delete=models.CASCADE, related_name="runs")
    instance = models.PositiveIntegerField()
    seed = models.PositiveIntegerField()
    competition = models.OneToOneField(
        "competitions.Competition", on_delete=models.SET_NULL, null=True, blank=True, related_name="tournament_run"
    )
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    claimed_by = models.CharField(max_length=100, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    rounds_done = models.PositiveIntegerField(default=0)
    llm_cost_usd = models.DecimalField(max_digits=18, decimal_places=8, default=Decimal(0))
    # When done: {"participants": [{"name", "final_equity", "return_pct"}, ...]} (Decimals as strings).
    result = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    seconds = models.FloatField(default=0, help_text="Wall time spent executing, over all attempts")

    class Meta:
        ordering = ["tournament_id", "window__index", "instance"]
        constraints = [
            models.UniqueConstraint(fields=["tournament", "window", "instance"], name="tournament_run_unique"),
            models.CheckConstraint(condition=Q(status__in=RunStatus.values), name="tournament_run_status_valid"),
        ]
        indexes = [
            # run_claim looks for the next claimable run of a tournament.
            models.Index(fields=["tournament", "status"], name="tournament_run_claimable"),
        ]

    def __str__(self):
        return f"tournament {self.tournament_id} window {self.window_id} instance {self.instance} ({self.status})"


class TournamentResults(models.Model):
    """The tournament-level results (ranking with intervals, pairs after Holm, the model confidence
    set, power) for one set of settings, as the API shows them, with the state they were computed
    from: the number of completed runs and the last finish. Written when a run completes
    (tournaments.results, from runs.run_execute); pages and the API read it while the state
    still matches, so no request pays for the bootstrap. A newer state is never overwritten by
    an older one (the write is conditional on the stored state)."""

    tournament = models.ForeignKey(Tournament, on_delete=models.CASCADE, related_name="stored_results")
    # sha256 of the settings (metric, resamples, ...) and the results' format version
    settings_key = models.CharField(max_length=64)
    settings = models.JSONField(default=dict)
    runs_completed = models.PositiveIntegerField()
    last_finished_at = models.DateTimeField(null=True, blank=True)
    data = models.JSONField(default=dict)
    computed_at = models.DateTimeField()
    compute_seconds = models.FloatField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tournament", "settings_key"], name="tournament_results_unique_settings"),
        ]

    def __str__(self):
        return f"tournament {self.tournament_id} results {self.settings.get('metric', '')} ({self.runs_completed} runs)"
