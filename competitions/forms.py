"""Admin forms: competitions and participants for people who do not write JSON.

Each form is a door into competitions.services. Before the admin saves anything, the form
rehearses the very service call it will make (inside a savepoint that is always rolled
back), so whatever the service refuses comes back as a form error and nothing is written;
the save then makes the same call for real. The admin view runs in one transaction, so a
refusal that appears only between the rehearsal and the save rolls the whole request back.
"""

import json
import logging
import re
from collections.abc import Callable
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.core.exceptions import ValidationError
from django.db import transaction

from agents.llm_config import llm_config_check
from gauntlet.errors import DomainError
from marketdata.models import AssetClass
from marketdata.selectors import instrument_list

from . import services
from .models import TIMEFRAMES, Competition, Participant, default_asset_classes


_rehearsing: ContextVar[bool] = ContextVar("rehearsing", default=False)


class _Rehearsed(Exception):
    """Raised at the end of a rehearsal to roll its savepoint back."""


class _QuietWhileRehearsing(logging.Filter):
    """A rehearsal's "created"/"registered" lines would describe rows that never exist."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or not _rehearsing.get()


logging.getLogger(services.__name__).addFilter(_QuietWhileRehearsing())


@contextmanager
def _rehearsal():
    token = _rehearsing.set(True)
    try:
        with transaction.atomic():
            yield
            raise _Rehearsed
    except _Rehearsed:
        pass
    finally:
        _rehearsing.reset(token)


def service_rehearse(call: Callable[[], Any]) -> None:
    """Make a service call and undo it: its DomainError (or ValidationError) reaches the
    caller, its writes never do. Callbacks queued with on_commit inside are dropped too."""
    with _rehearsal():
        call()


def add_service_error(
    form: forms.BaseForm, exc: DomainError | ValidationError, field_map: dict[str, str]
) -> None:
    """Show a service's refusal on the field it names, or above the form when it names none."""
    if isinstance(exc, ValidationError):
        form.add_error(None, exc)
        return
    field = field_map.get(exc.field or "", exc.field)
    form.add_error(field if field in form.fields else None, exc.message)


def _kept_order(chosen: list[str], stored: list[str] | None) -> list[str]:
    """The chosen values, stored ones first in their stored order: re-saving an unchanged
    selection gives back the same list, which a running competition's locked rules require."""
    stored = [value for value in (stored or []) if value in chosen]
    return stored + [value for value in chosen if value not in stored]


# -- competitions --------------------------------------------------------------------------


class CompetitionForm(forms.ModelForm):
    allowed_asset_classes = forms.MultipleChoiceField(
        choices=AssetClass.choices,
        initial=default_asset_classes,  # declared fields do not inherit the model's default
        widget=forms.CheckboxSelectMultiple,
        help_text="The kinds of instrument agents may trade.",
    )
    symbols = forms.MultipleChoiceField(
        required=False,
        widget=FilteredSelectMultiple("instruments", is_stacked=False),
        help_text="Instruments agents may trade. Choose none for every instrument of the allowed classes "
        "that the data source has.",
    )
    timeframe = forms.ChoiceField(
        choices=[(t, t) for t in TIMEFRAMES],
        initial=Competition._meta.get_field("timeframe").default,
        help_text="Candle size agents see.",
    )

    class Meta:
        model = Competition
        fields = sorted(services.COMPETITION_FIELDS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and self.instance.mask:
            self._show_real_terms()
        if "symbols" in self.fields:
            catalogue = [
                (i.symbol, f"{i.symbol} · {i.name} ({i.get_asset_class_display()})" if i.name else i.symbol)
                for i in instrument_list()
            ]
            known = {symbol for symbol, _ in catalogue}
            # A stored symbol that left the catalogue stays visible, so saving does not drop it silently.
            missing = [
                (symbol, f"{symbol} (not in the catalogue)")
                for symbol in self._stored_symbols()
                if symbol not in known
            ]
            self.fields["symbols"].choices = catalogue + missing

    def _stored_symbols(self) -> list[str]:
        # a masked replay stores ASSET_1...; the form offers the instruments behind them
        return list(self.instance.real_symbols if self.instance.mask else self.instance.symbols or [])

    def _show_real_terms(self) -> None:
        """A masked replay is edited in real terms (docs/memory.md): the form shows the real start, end
        and instruments, and the service derives the masked world from them again (a draft) or keeps
        the one its rounds were played in (started: only the end can move, by the same whole weeks)."""
        competition = self.instance
        note = (
            "Masked replay: give the real {what}; the agents see it masked ({how}), "
            + ("recomputed when you save." if competition.status == Competition.Status.DRAFT
               else "with the masked world its rounds were played in.")
        )
        real = {
            "start_time": (competition.real_start_time, "time", "shifted by whole weeks"),
            "end_time": (competition.real_end_time, "time", "shifted by whole weeks"),
            "symbols": (competition.real_symbols, "instruments", "renamed ASSET_1, ASSET_2, ... and rescaled"),
        }
        for name, (value, what, how) in real.items():
            if name in self.fields:
                self.initial[name] = value
                self.fields[name].help_text = note.format(what=what, how=how)

    def clean_allowed_asset_classes(self):
        return _kept_order(self.cleaned_data["allowed_asset_classes"], self.instance.allowed_asset_classes)

    def clean_symbols(self):
        return _kept_order(self.cleaned_data["symbols"], self._stored_symbols())

    def service_fields(self) -> dict[str, Any]:
        return {
            name: value for name, value in self.cleaned_data.items() if name in services.COMPETITION_FIELDS
        }

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        fields = self.service_fields()
        if self.instance.pk:
            call = partial(services.competition_update, competition_id=self.instance.pk, **fields)
        else:
            call = partial(services.competition_create, **fields)
        try:
            service_rehearse(call)
        except (DomainError, ValidationError) as exc:
            add_service_error(self, exc, {})
        return cleaned


# -- participants --------------------------------------------------------------------------

STRUCTURED_OUTPUT_CHOICES = [
    ("", "Provider default"),
    ("auto", "auto: the best the provider supports"),
    ("json_schema", "json_schema: strict JSON Schema"),
    ("json_object_schema", "json_object_schema: JSON object, schema in the prompt"),
    ("vllm_guided_json", "vllm_guided_json: vLLM guided decoding"),
    ("ollama_format", "ollama_format: Ollama format parameter"),
    ("tools", "tools: a forced tool call"),
    ("json_object", "json_object: any JSON object"),
    ("none", "none: free text, parsed afterwards"),
]
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _clean_base_url(value: str) -> str:
    # Not URLValidator: it refuses hosts without a dot, and "http://ollama:11434/v1" (a
    # compose service) or "http://gpu-box:8000/v1" are exactly what people point agents at.
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("Enter a URL starting with http:// or https://, e.g. http://localhost:11434/v1")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked
    except ValueError as exc:
        raise ValidationError("The port must be a number between 0 and 65535.") from exc
    return value


def _clean_env_name(value: str) -> str:
    if not ENV_NAME.match(value):
        raise ValidationError(
            "Use an environment variable name: letters, digits and _, e.g. OPENROUTER_API_KEY."
        )
    return value


def _positive(value: float) -> float:
    if value <= 0:
        raise ValidationError("Must be more than 0.")
    return value


class JSONObjectField(forms.JSONField):
    """A JSON object typed by hand: empty when there is nothing (not "null"), on one line when
    it fits, indented when it does not, so long nested settings stay readable."""

    def prepare_value(self, value):
        if value in (None, {}):
            return ""
        if not isinstance(value, dict):
            return super().prepare_value(value)
        one_line = json.dumps(value, ensure_ascii=False, cls=self.encoder)
        if len(one_line) <= 80:
            return one_line
        return json.dumps(value, indent=2, ensure_ascii=False, cls=self.encoder)


# The llm_config keys that have their own field (named config_<key>) on the participant form;
# a blank field leaves its key out, so the provider's default applies.
LLM_CONFIG_KEYS = (
    "base_url", "timeout_seconds", "temperature", "max_tokens", "api_key_env", "structured_output",
)  # fmt: skip
CONFIG_FIELD_PREFIX = "config_"
ADVANCED_FIELD = "config_advanced"
CONFIG_FIELD_NAMES = tuple(CONFIG_FIELD_PREFIX + key for key in LLM_CONFIG_KEYS) + (ADVANCED_FIELD,)


class ParticipantForm(forms.ModelForm):
    """Registers through participant_register, edits through participant_update.

    llm_config shows as one field per known key plus an advanced JSON object for the rest,
    merged back into one dict on save. The service cannot rename a participant, move it or
    change its provider, so those fields are locked once it exists.
    """

    # The standalone admin page rehearses in clean(); the inline's formset rehearses all its
    # rows together (their order matters when a competition fills up).
    rehearse_in_clean = True

    # fmt: off
    config_base_url = forms.CharField(
        label="Base URL", required=False, validators=[_clean_base_url],
        widget=forms.TextInput(attrs={"size": 50, "placeholder": "http://localhost:11434/v1"}),
        help_text="An OpenAI-compatible server (Ollama, vLLM, ...). Blank: the provider's own API.",
    )
    config_timeout_seconds = forms.FloatField(
        label="Timeout (seconds)", required=False, validators=[_positive],
        help_text="How long one model call may take. Blank: 60, or 300 for an OpenAI-compatible server.",
    )
    config_temperature = forms.FloatField(
        label="Temperature", required=False, min_value=0, max_value=2,
        help_text="0 to 2. Blank: the model's default.",
    )
    config_max_tokens = forms.IntegerField(
        label="Max tokens", required=False, min_value=1,
        help_text="Longest answer, in tokens. Blank: the default.",
    )
    config_api_key_env = forms.CharField(
        label="API key environment variable", required=False, validators=[_clean_env_name],
        help_text="Read the provider key from this variable when no key is stored for the participant.",
    )
    config_structured_output = forms.ChoiceField(
        label="Structured output", required=False, choices=STRUCTURED_OUTPUT_CHOICES,
        help_text="How the model is held to the decision JSON.",
    )
    config_advanced = JSONObjectField(
        label="Advanced settings (JSON)", required=False,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        help_text='Other llm_config keys as one JSON object, e.g. {"pricing": {"input_per_mtok": 3, '
        '"output_per_mtok": 15}}. Keys with a field of their own belong in that field.',
    )
    api_key = forms.CharField(
        label="API key", required=False, strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Optional provider key for this participant. Stored encrypted; never shown again. "
        "Leave empty to keep the current key.",
    )
    clear_api_key = forms.BooleanField(
        label="Clear API key", required=False, help_text="Forget the stored key",
    )
    # fmt: on

    class Meta:
        model = Participant
        fields = ["competition", "name", "llm_provider", "llm_model"]
        labels = {"llm_provider": "LLM provider", "llm_model": "LLM model"}
        help_texts = {"llm_model": "The provider's model name, or the strategy of a built-in baseline."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        known, advanced = llm_config_split(self.instance.llm_config)
        for key, value in known.items():
            self.initial.setdefault(CONFIG_FIELD_PREFIX + key, value)
        self.initial.setdefault(ADVANCED_FIELD, advanced or None)
        if self.instance.pk:
            for name in ("competition", "name", "llm_provider"):
                if name in self.fields:
                    self.fields[name].disabled = True
                    self.fields[name].help_text = "Fixed once the participant is registered."

    def clean_config_advanced(self):
        advanced = self.cleaned_data.get(ADVANCED_FIELD)
        if advanced in (None, ""):
            return {}
        if not isinstance(advanced, dict):
            raise ValidationError('Enter a JSON object in braces, e.g. {"pricing": {"input_per_mtok": 3}}.')
        doubled = sorted(set(advanced) & set(LLM_CONFIG_KEYS))
        if doubled:
            raise ValidationError(
                f"Set {', '.join(doubled)} in the field(s) above, not in the advanced JSON."
            )
        return advanced

    def llm_config(self) -> dict[str, Any]:
        """The known fields and the advanced JSON merged back into one llm_config dict."""
        config = dict(self.cleaned_data.get(ADVANCED_FIELD) or {})
        for key in LLM_CONFIG_KEYS:
            value = self.cleaned_data.get(CONFIG_FIELD_PREFIX + key)
            if value in (None, ""):
                continue
            # A whole number of seconds is stored as one (60, not 60.0), as people write it.
            config[key] = int(value) if key == "timeout_seconds" and value.is_integer() else value
        return config

    def api_key_change(self) -> str | None:
        """None keeps the stored key, "" forgets it, anything else replaces it."""
        if self.cleaned_data.get("clear_api_key"):
            return ""
        return self.cleaned_data.get("api_key") or None

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            # The same check as every door: no credentials in llm_config (every read returns it), sane size.
            llm_config_check(self.llm_config(), field="llm_config")
        except DomainError as exc:
            self.add_error(ADVANCED_FIELD, exc.message)
            return cleaned
        competition = cleaned.get("competition")
        if self.rehearse_in_clean and competition is not None:
            try:
                service_rehearse(lambda: self.save_through_services(competition_id=competition.pk))
            except (DomainError, ValidationError) as exc:
                add_service_error(self, exc, {"llm_config": ADVANCED_FIELD})
        return cleaned

    def save_through_services(self, *, competition_id: int) -> Participant:
        if not self.instance.pk:
            return services.participant_register(
                competition_id=competition_id,
                name=self.cleaned_data["name"],
                llm_provider=self.cleaned_data["llm_provider"],
                llm_model=self.cleaned_data["llm_model"],
                llm_config=self.llm_config(),
                api_key=self.api_key_change() or None,
            )
        stored = Participant.objects.get(pk=self.instance.pk)
        changes: dict[str, Any] = {}
        if self.cleaned_data["llm_model"] != stored.llm_model:
            changes["llm_model"] = self.cleaned_data["llm_model"]
        if self.llm_config() != stored.llm_config:
            changes["llm_config"] = self.llm_config()
        if self.api_key_change() is not None:
            changes["api_key"] = self.api_key_change()
        # Saving an untouched form is no change: no call, so the participants of a running
        # competition can be opened and saved without the service's "config locked" refusal.
        if not changes:
            return stored
        return services.participant_update(participant_id=self.instance.pk, **changes)

    def save(self, commit=True):
        if not commit:
            return super().save(commit=False)
        return self.save_through_services(competition_id=self.instance.competition_id)


def llm_config_split(config: dict | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Known keys whose stored value their field accepts, and everything else (advanced):
    a stored value its field would refuse stays visible in the JSON rather than vanish."""
    known, advanced = {}, {}
    for key, value in (config or {}).items():
        field = ParticipantForm.base_fields.get(CONFIG_FIELD_PREFIX + key) if key in LLM_CONFIG_KEYS else None
        if field is not None and value not in (None, "") and not isinstance(value, (dict, list, bool)):
            try:
                field.clean(value)
            except ValidationError:
                pass
            else:
                known[key] = value
                continue
        advanced[key] = value
    return known, advanced


class ParticipantInlineForm(ParticipantForm):
    rehearse_in_clean = False


class ParticipantInlineFormSet(forms.BaseInlineFormSet):
    """The participants on a competition's page: rehearsed together, in the order the save
    makes its calls (deletions, then changes, then registrations), against the competition
    as the form above would save it."""

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        changed = [f for f in self.initial_forms if f not in self.deleted_forms and f.has_changed()]
        new = [f for f in self.extra_forms if f.has_changed() and not self._should_delete_form(f)]
        if not (changed or new):
            return
        with _rehearsal():
            competition_id = self.instance.pk or self._rehearsed_competition_id()
            if competition_id is None:
                return
            for form in self.deleted_forms:
                if form.instance.pk:
                    form.instance.delete()
            for form in changed + new:
                try:
                    form.save_through_services(competition_id=competition_id)
                except (DomainError, ValidationError) as exc:
                    add_service_error(form, exc, {"llm_config": ADVANCED_FIELD})

    def _rehearsed_competition_id(self) -> int | None:
        """A new competition, created inside the rehearsal's savepoint from the values its
        form cleaned; None when the service refuses them (the competition form says why)."""
        fields = {name: getattr(self.instance, name) for name in services.COMPETITION_FIELDS}
        try:
            return services.competition_create(**fields).pk
        except (DomainError, ValidationError):
            return None
