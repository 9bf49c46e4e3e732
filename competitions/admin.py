"""Admin: the place where a non-programmer creates and drives competitions.

Every write goes through competitions.services, so the admin obeys the same rules as
the API; the forms (competitions.forms) turn a service's refusal into a form error.
A participant's API key is write-only here: the form shows whether one is set.
"""

from django.contrib import admin, messages
from django.db.models import Count

from agents.registry import participant_training_cutoff
from gauntlet.errors import DomainError

from . import services
from .forms import (
    CONFIG_FIELD_NAMES,
    CompetitionForm,
    ParticipantForm,
    ParticipantInlineForm,
    ParticipantInlineFormSet,
)
from .models import Competition, Participant, Round
from . import dispatch as runner
from .rules import RULE_FIELDS

class ParticipantInline(admin.StackedInline):
    model = Participant
    form = ParticipantInlineForm
    formset = ParticipantInlineFormSet
    fieldsets = [
        (None, {"fields": [("name", "llm_provider", "llm_model"), ("api_key", "clear_api_key", "api_key_set"),
                           "status"]}),
        ("Model settings", {"fields": CONFIG_FIELD_NAMES, "classes": ["collapse"]}),
    ]  # fmt: skip
    readonly_fields = ["api_key_set", "status"]
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
    readonly_fields = ["status", "market_time", "masked_world", "created_at", "started_at", "completed_at"]
    fieldsets = [
        (None, {"fields": ["name", "description", "status", "market_time", "masked_world"]}),
        ("Rules", {"fields": RULE_FIELDS, "description": "The rules of the game: they can change only while "
                   "the competition is a draft."}),
        ("While it runs", {"fields": ["end_time", "prompt_leaderboard"], "description": "These can change "
                           "until the competition ends."}),
        ("Timestamps", {"fields": ["created_at", "started_at", "completed_at"], "classes": ["collapse"]}),
    ]  # fmt: skip

    def get_readonly_fields(self, request, obj=None):
        # Once a competition has started its rules are shown, not offered for editing: the
        # service would refuse any change to them.
        if obj is not None and obj.status != Competition.Status.DRAFT:
            return [*self.readonly_fields, *RULE_FIELDS]
        return self.readonly_fields

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_participants=Count("participants"))

    @admin.display(description="Masked world")
    def masked_world(self, obj):
        # the stored start/end are the masked ones; the form edits the real ones (CompetitionForm)
        if obj is None or not obj.mask:
            return "not masked: the agents see the real market"
        names = ", ".join(f"{masked} = {real}" for masked, real in obj.mask["symbols"].items())
        return (f"{names}; market time + {obj.mask['shift_weeks']} weeks: {obj.start_time:%Y-%m-%d %H:%M} is really "
                f"{obj.real_start_time:%Y-%m-%d %H:%M} UTC, the end {obj.real_end_time:%Y-%m-%d %H:%M} UTC. "
                "Start, end and symbols are edited in real terms.")

    @admin.display(description="Participants", ordering="n_participants")
    def participant_count(self, obj):
        return obj.n_participants

    def save_model(self, request, obj, form, change):
        # The call the form rehearsed, made for real.
        fields = form.service_fields()
        if change:
            saved = services.competition_update(competition_id=obj.pk, **fields)
        else:
            saved = services.competition_create(**fields)
        obj.pk = saved.pk
        obj.refresh_from_db()


DISQUALIFIED_BY_ADMIN = "disqualified by an administrator"


@admin.action(description="Disqualify selected participants")
def disqualify_participants(modeladmin, request, queryset):
    for participant in queryset:
        try:
            services.participant_disqualify(participant_id=participant.pk, reason=DISQUALIFIED_BY_ADMIN)
        except DomainError as exc:
            modeladmin.message_user(request, f"{participant.name}: {exc.message}", messages.ERROR)
        else:
            modeladmin.message_user(request, f"{participant.name}: disqualified", messages.SUCCESS)


@admin.register(Participant)
class ParticipantAdmin(admin.ModelAdmin):
    form = ParticipantForm
    list_display = ["name", "competition", "llm_provider", "llm_model", "status", "api_key_set", "joined_at"]
    list_filter = ["status", "llm_provider", "competition"]
    search_fields = ["name", "llm_model", "competition__name"]
    list_select_related = ["competition"]
    actions = [disqualify_participants]
    # Status changes come from the engine (liquidation) or the disqualify action, never by hand.
    readonly_fields = ["status", "status_reason", "api_key_set", "joined_at", "training_cutoff"]
    fieldsets = [
        (None, {"fields": ["competition", "name", "llm_provider", "llm_model", "status", "status_reason",
                           "joined_at", "training_cutoff"]}),
        ("Model settings", {"fields": CONFIG_FIELD_NAMES, "description": "Stored as the participant's "
                            "llm_config. Leave a field blank for the provider's default."}),
        ("API key", {"fields": ["api_key", "clear_api_key", "api_key_set"]}),
    ]  # fmt: skip

    @admin.display(boolean=True, description="API key set")
    def api_key_set(self, obj):
        return obj.has_api_key

    @admin.display(description="Training cutoff")
    def training_cutoff(self, obj):
        # read-only: set it with the llm_config key training_cutoff ("YYYY-MM" or "YYYY-MM-DD")
        entry = participant_training_cutoff(obj) if obj.pk else None
        return f"{entry.training_cutoff} ({entry.source_label})" if entry else "unknown"

    def save_model(self, request, obj, form, change):
        # The call the form rehearsed (participant_register or participant_update), for real.
        saved = form.save()
        obj.pk = saved.pk
        obj.refresh_from_db()


@admin.register(Round)
class RoundAdmin(admin.ModelAdmin):
    list_display = ["competition", "number", "market_time", "status", "started_at", "finished_at"]
    list_filter = ["status", "competition"]
    list_select_related = ["competition"]
    readonly_fields = [f.name for f in Round._meta.fields]

    def has_add_permission(self, request):
        return False
