"""Admin: create a tournament with its lineup inline, start or cancel it, watch its progress.

The row and its lineup are saved by the form, then checked by tournaments.services (windows
generated from the spec, the rules through competition_create's validation); start and
cancel are service calls. Entry API keys are write-only, as for participants.
"""

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from gauntlet.errors import DomainError
from gauntlet.secrets import encrypt_secret

from . import selectors, services
from .models import Tournament, TournamentEntry, TournamentRun, TournamentWindow


class EntryForm(forms.ModelForm):
    api_key = forms.CharField(
        required=False, strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Optional provider key. Stored encrypted; never shown or exported. Empty keeps the current key.",
    )

    class Meta:
        model = TournamentEntry
        fields = ["name", "llm_provider", "llm_model", "llm_config"]

    def clean(self):
        cleaned = super().clean()
        if not self.errors and cleaned.get("name"):  # the API's checks: no key in llm_config, a known baseline
            try:
                fields = ("name", "llm_provider", "llm_model", "llm_config")
                services.entry_check({key: cleaned.get(key) for key in fields})
            except DomainError as exc:
                raise forms.ValidationError(exc.message) from exc
        return cleaned

    def save(self, commit=True):
        entry = super().save(commit=False)
        if self.cleaned_data.get("api_key"):
            entry.api_key_encrypted = encrypt_secret(self.cleaned_data["api_key"])
        if commit:
            entry.save()
        return entry


class EntryInline(admin.TabularInline):
    model = TournamentEntry
    form = EntryForm
    fields = ["name", "llm_provider", "llm_model", "llm_config", "api_key", "api_key_set"]
    readonly_fields = ["api_key_set"]
    extra = 1

    @admin.display(boolean=True, description="API key set")
    def api_key_set(self, obj):
        return obj.has_api_key

    def has_change_permission(self, request, obj=None):
        return obj is None or obj.is_draft

    def has_add_permission(self, request, obj=None):
        return obj is None or obj.is_draft

    def has_delete_permission(self, request, obj=None):
        return obj is None or obj.is_draft


class WindowInline(admin.TabularInline):
    model = TournamentWindow
    fields = ["index", "start_time", "end_time"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class RunInline(admin.TabularInline):
    model = TournamentRun
    fields = ["window", "instance", "seed", "status", "attempts", "rounds_done", "llm_cost_usd", "competition", "error"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


def _each(modeladmin, request, queryset, service, verb):
    for tournament in queryset:
        try:
            service(tournament_id=tournament.pk)
        except DomainError as exc:
            modeladmin.message_user(request, f"{tournament}: {exc.message}", messages.ERROR)
        else:
            modeladmin.message_user(request, f"{tournament}: {verb}", messages.SUCCESS)


@admin.action(description="Start selected tournaments")
def start_tournaments(modeladmin, request, queryset):
    _each(modeladmin, request, queryset, services.tournament_start, "started")


@admin.action(description="Cancel selected tournaments")
def cancel_tournaments(modeladmin, request, queryset):
    _each(modeladmin, request, queryset, services.tournament_cancel, "cancelled")


def _copy(modeladmin, request, queryset, masked: bool):
    world = "masked" if masked else "unmasked"
    for tournament in queryset:
        try:
            copy = services.tournament_copy(tournament_id=tournament.pk, masked=masked)
        except DomainError as exc:
            modeladmin.message_user(request, f"{tournament}: {exc.message}", messages.ERROR)
        else:
            modeladmin.message_user(
                request, f"{tournament}: copied as {world} draft {copy.pk} ({copy.name}); start it, then read the "
                "memory gap on either tournament's page", messages.SUCCESS,
            )


@admin.action(description="Copy as masked (same lineup and windows, for the memory gap)")
def copy_masked(modeladmin, request, queryset):
    _copy(modeladmin, request, queryset, True)


@admin.action(description="Copy as unmasked (same lineup and windows)")
def copy_unmasked(modeladmin, request, queryset):
    _copy(modeladmin, request, queryset, False)


@admin.register(Tournament)
class TournamentAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "status", "dataset", "timeframe", "instances", "cache_mode", "progress", "created_at"]
    list_filter = ["status", "cache_mode"]
    search_fields = ["name"]
    actions = [start_tournaments, cancel_tournaments, copy_masked, copy_unmasked]
    inlines = [EntryInline, WindowInline, RunInline]
    fields = [
        "name", "description", "dataset", "timeframe", "symbols", "rules", "windows_spec", "instances", "seed",
        "cache_mode", "max_attempts", "in_sample", "copy_of", "memory_gap", "status", "progress", "started_at",
        "completed_at",
    ]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and not obj.is_draft:
            # what the rankings do with in-sample windows changes no run: it stays editable
            return [name for name in self.fields if name not in services.ANYTIME_FIELDS]
        return ["copy_of", "memory_gap", "status", "progress", "started_at", "completed_at"]

    @admin.display(description="Memory gap")
    def memory_gap(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        return format_html('<a href="{}">masked vs unmasked, before vs after each cutoff</a>',
                           reverse("tournament-memory-gap-page", args=[obj.pk]))

    @admin.display(description="Progress")
    def progress(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        p = selectors.tournament_progress(obj.pk)
        return format_html(
            "runs {}/{} ({} running, {} failed) · rounds {}/{} · LLM ${} · cache hits {}",
            p.runs_done, p.runs_total, p.runs_running, p.runs_failed, p.rounds_done, p.rounds_total,
            p.llm_cost_usd, p.cache_hits,
        )

    def save_model(self, request, obj, form, change):
        if change and not obj.is_draft:  # only the in-sample setting is offered: through the service
            services.tournament_update(tournament_id=obj.pk, in_sample=form.cleaned_data["in_sample"])
            return
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if form.instance.is_draft:
            try:
                services.tournament_check(tournament_id=form.instance.pk)
            except DomainError as exc:
                self.message_user(request, f"Saved as a draft, but it cannot start yet: {exc.message}", messages.WARNING)
