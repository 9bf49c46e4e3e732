"""Serializer fields every app's API shares."""

from rest_framework import serializers

from gauntlet.timefmt import iso_utc


class UtcDateTime(serializers.DateTimeField):
    """A moment as the project writes every moment: ISO-8601 UTC with "Z" (gauntlet.timefmt).
    Input is parsed as DRF does (a time without offset is read as UTC)."""

    def to_representation(self, value):
        if not value:
            return None
        if isinstance(value, str):
            return value
        return iso_utc(value)
