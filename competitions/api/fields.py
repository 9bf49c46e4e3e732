"""The API's building blocks: exact decimal strings, UTC times, strict input and safe JSON config.

Decimals leave as plain strings ("10000", not 10000.0), times as ISO-8601 UTC ("...Z", through
gauntlet.timefmt.iso_utc like every time the project writes). Input serializers refuse unknown
fields and text no database can store.
"""

import json
import math
from collections.abc import Mapping
from decimal import Decimal

from django.db import models
from rest_framework import serializers

from agents.llm_config import llm_config_check
from gauntlet.api_fields import UtcDateTime
from gauntlet.errors import DomainError



class DecimalString(serializers.DecimalField):
    """A Decimal as an exact plain string without trailing zeros: "0.05", "10000"."""

    def __init__(self, **kwargs):
        kwargs.setdefault("coerce_to_string", True)
        super().__init__(**kwargs)

    def to_representation(self, value):
        if value is None:
            return None
        value = value if isinstance(value, Decimal) else Decimal(str(value))
        text = format(value.normalize(), "f")
        return "0" if text in {"-0", ""} else text


MAX_JSON_DEPTH = 32


def _json_problem(data) -> tuple[str, str] | None:
    """(top-level field, message) for text no database can store (a lone surrogate is valid
    JSON, not valid UTF-8) or nesting deeper than MAX_JSON_DEPTH; None when the body is fine.
    Iterative, so no body can exhaust the interpreter's recursion limit."""
    stack = [(value, name, 1) for name, value in data.items()]
    while stack:
        value, field, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return field, f"nested deeper than {MAX_JSON_DEPTH} levels"
        if isinstance(value, Mapping):
            for key, item in value.items():
                stack.append((key, field, depth))
                stack.append((item, field, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, field, depth + 1) for item in value)
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return field, "text must be valid Unicode (no lone surrogates)"
    return None


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know (a typo must not be silently ignored) and unstorable text."""

    # Fields a read returns but a write may not set, with what to do instead.
    read_only_hints: dict[str, str] = {}

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            if any(_json_problem({"name": name}) for name in data):
                raise serializers.ValidationError({"non_field_errors": ["field names must be valid Unicode"]})
            writable = {name for name, field in self.fields.items() if not field.read_only}
            errors = {}
            for name in data:
                if name in writable:
                    continue
                if name in self.read_only_hints:
                    errors[name] = [f"this field is read-only; {self.read_only_hints[name]}"]
                elif name in self.fields:
                    errors[name] = ["this field is read-only"]
                else:
                    errors[name] = [f"unknown field; allowed: {', '.join(sorted(writable))}"]
            problem = _json_problem(dict(data))
            if problem:
                field, message = problem
                errors[field] = [message]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


def validate_config_object(value: dict, *, field: str) -> dict:
    """The llm_config rules of agents.llm_config, as a serializer error."""
    try:
        return llm_config_check(value, field=field)
    except DomainError as exc:
        raise serializers.ValidationError(exc.message) from exc


def pct(**kwargs):
    return DecimalString(max_digits=12, decimal_places=6, **kwargs)


# Its docstring describes serializers without one of their own in /api/schema (RoundSerializer):
# changing it changes the published schema. Times leave through UtcDateTime.
class ReadSerializer(serializers.ModelSerializer):
    """Output-only model serializer whose decimals are plain strings."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DecimalField: DecimalString,
        models.DateTimeField: UtcDateTime,
    }


def plain_decimal(value) -> str | None:
    """The API's one decimal format, for serializers and the CSV/JSON exports alike."""
    if value is None:
        return None
    return DecimalString(max_digits=None, decimal_places=None).to_representation(value)


def money(**kwargs):
    return DecimalString(max_digits=None, decimal_places=None, read_only=True, **kwargs)


class FiniteFloat(serializers.FloatField):
    """A metric as a JSON number; undefined or infinite values (a profit factor without losses) are null."""

    def to_representation(self, value):
        if value is None:
            return None
        value = float(value)
        return value if math.isfinite(value) else None
