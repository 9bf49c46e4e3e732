"""Admin: the place where a non-programmer creates and drives competitions.

Every write goes through competitions.services, so the admin obeys the same rules as
the API. A participant's API key is write-only here: the form shows whether one is set.
"""

from django import forms
from django.contrib import admin, messages
from django.db.models import Count

from gauntlet.errors import DomainError
from gauntlet.secrets import encrypt_secret

from . import services
from .rounds import dispatch as runner
from .models import Competition, Participant, Round


class ParticipantForm(forms.ModelForm):
    api_key = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Optional provider key for this participant. Stored encrypted; never shown again. "
        "Leave empty to keep the current key.",
    )
    clear_api_key = forms.BooleanField(required=False, help_text="Forget the stored key")

    class Meta:
        model = Participant
        fields = ["competition", "name", "llm_provider", "llm_model", "llm_config", "status", "status_reason"]

    def clean(self):
        cleaned = super().clean()
        competition = cleaned.get("competition") or getattr(self.instance, "competition", None)
        if self.instance.pk is None and competition is not None and competition.pk:
            if competition.is_finished:
                raise forms.ValidationError(f"registration is closed: the competition is {competition.status}")
            if competition.participants.count() >= competition.max_participants:
                raise forms.ValidationError(f"the competition is full ({competition.max_participants} participants)")
        return cleaned

    def save(self, commit=True):
        participant = super().save(commit=False)
        if self.cleaned_data.get("clear_api_key"):
            participant.api_key_encrypted = ""
        elif self.cleaned_data.get("api_key"):
            participant.api_key_encrypted = encrypt_secret(self.cleaned_data["api_key"])
        if commit:
            participant.save()
        return participant


class ParticipantInline(admin.TabularInline):
    model = Participant
    form = ParticipantForm
    fields = ["name", "llm_provider", "llm_model", "llm_config", "api_key", "api_key_set", "status"]
    readonly_fields = ["api_key_set"]
    extra = 0
    show_change_link = True

    @admin.display(boolean=True, description="API key set")
    def api_key_set(self, obj):
        return obj.has_api_key


def _run_service(modeladmin, request, queryset, service, verb):
    for competition in queryset:
        try:
            service(competition_id=competition.pk)
        except DomainError as exc:
            modeladmin.message_user(request, f"{competition}: {exc.message}", messages.ERROR)
        else:
            modeladmin.message_user(request, f"{competition}: {verb}", messages.SUCCESS)


@admin.action(description="Start selected competitions")
def start_competitions(modeladmin, request, queryset):
    _run_service(modeladmin, request, queryset, services.competition_start, "started")


@admin.action(description="Pause selected competitions")
def pause_competitions(modeladmin, request, queryset):
    _run_service(modeladmin, request, queryset, services.competition_pause, "paused")


@admin.action(description="Resume selected competitions")
def resume_competitions(modeladmin, request, queryset):
    _run_service(modeladmin, request, queryset, services.competition_resume, "resumed")


@admin.action(description="Stop (complete) selected competitions")
def stop_competitions(modeladmin, request, queryset):
    _run_service(modeladmin, request, queryset, services.competition_stop, "stopped")


class CompetitionForm(forms.ModelForm):
    class Meta:
        model = Competition
        fields = sorted(services.COMPETITION_FIELDS)

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        fields = {name: cleaned[name] for name in cleaned if name in services.COMPETITION_FIELDS}
        candidate = Competition(**{f.name: getattr(self.instance, f.name) for f in Competition._meta.concrete_fields})
        for name, value in fields.items():
            setattr(candidate, name, value)
        try:
            if self.instance.pk:
                stored = Competition.objects.get(pk=self.instance.pk)
                services.competition_check_locked_rules(stored, fields)
            services.competition_validate(candidate)
        except DomainError as exc:
            if exc.field and exc.field in self.fields:
                self.add_error(exc.field, exc.message)
            else:
                raise forms.ValidationError(exc.message) from exc
        return cleaned


@admin.action(description="Run one round now")
def run_round_now(modeladmin, request, queryset):
    for competition in queryset:
        try:
            round_ = runner.dispatch_round_trigger(competition_id=competition.pk)
        except DomainError as exc:
            modeladmin.message_user(request, f"{competition}: {exc.message}", messages.ERROR)
            continue
        if round_ is None:
            modeladmin.message_user(request, f"{competition}: round queued", messages.SUCCESS)
        else:
            modeladmin.message_user(
                request, f"{competition}: round {round_.number} {round_.status} {round_.detail}".strip(), messages.SUCCESS
            )


@admin.action(description="Run replay to the end (in the background)")
def run_replay(modeladmin, request, queryset):
    for competition in queryset:
        if competition.mode != Competition.Mode.REPLAY:
            modeladmin.message_user(request, f"{competition}: not a replay competition", messages.ERROR)
            continue
        try:
            if competition.status == Competition.Status.DRAFT:
                services.competition_start(competition_id=competition.pk)
            started = runner.dispatch_replay(competition_id=competition.pk)
        except DomainError as exc:
            modeladmin.message_user(request, f"{competition}: {exc.message}", messages.ERROR)
            continue
        note = "replay started; progress shows on its dashboard" if started else "its replay is already running"
        modeladmin.message_user(request, f"{competition}: {note}", messages.SUCCESS)


@admin.register(Competition)
class CompetitionAdmin(admin.ModelAdmin):
    form = CompetitionForm
    list_display = ["name", "status", "mode", "start_time", "end_time", "participant_count", "market_time"]
    list_filter = ["status", "mode", "market_hours_only"]
    search_fields = ["name", "description"]
    date_hierarchy = "start_time"
    inlines = [ParticipantInline]
    actions = [
        start_competitions, pause_competitions, resume_competitions, stop_competitions, run_round_now, run_replay,
    ]
    readonly_fields = ["status", "market_time", "created_at", "started_at", "completed_at"]
    fieldsets = [
        (None, {"fields": ["name", "description", "status", "mode", "start_time", "end_time",
                           "invocation_interval_minutes", "market_time"]}),
        ("Capital and risk", {"fields": ["initial_capital", "max_leverage", "max_position_size_pct",
                                         "margin_requirement_pct", "maintenance_margin_pct"]}),
        ("Market", {"fields": ["allowed_asset_classes", "symbols", "market_hours_only", "dataset", "timeframe"]}),
        ("Costs", {"fields": ["fee_pct", "spread_bps", "slippage_bps", "funding_rate_pct_8h",
                              "financing_rate_pct_annual"]}),
        ("Agents", {"fields": ["max_participants", "seed", "prompt_leaderboard"]}),
        ("Timestamps", {"fields": ["created_at", "started_at", "completed_at"], "classes": ["collapse"]}),
    ]  # fmt: skip

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_participants=Count("participants"))

    @admin.display(description="Participants", ordering="n_participants")
    def participant_count(self, obj):
        return obj.n_participants

    def save_model(self, request, obj, form, change):
        # New competitions go through the service so the same validation applies everywhere.
        fields = {name: form.cleaned_data[name] for name in form.cleaned_data if name in services.COMPETITION_FIELDS}
        if change:
            saved = services.competition_update(competition_id=obj.pk, **fields)
        else:
            saved = services.competition_create(**fields)
        obj.pk = saved.pk
        obj.refresh_from_db()


@admin.register(Participant)
class ParticipantAdmin(admin.ModelAdmin):
    form = ParticipantForm
    list_display = ["name", "competition", "llm_provider", "llm_model", "status", "api_key_set", "joined_at"]
    list_filter = ["status", "llm_provider", "competition"]
    search_fields = ["name", "llm_model", "competition__name"]
    list_select_related = ["competition"]
    readonly_fields = ["api_key_set", "joined_at"]

    @admin.display(boolean=True, description="API key set")
    def api_key_set(self, obj):
        return obj.has_api_key


@admin.register(Round)
class RoundAdmin(admin.ModelAdmin):
    list_display = ["competition", "number", "market_time", "status", "started_at", "finished_at"]
    list_filter = ["status", "competition"]
    list_select_related = ["competition"]
    readonly_fields = [f.name for f in Round._meta.fields]

    def has_add_permission(self, request):
        return False
