"""iso_utc: the one text form of a moment across the API, exports, replay progress and snapshots."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from gauntlet.timefmt import iso_utc

PARIS_WINTER = timezone(timedelta(hours=1))


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2025, 1, 1, tzinfo=UTC), "2025-01-01T00:00:00Z"),
        (datetime(2025, 1, 1, 1, 30, tzinfo=PARIS_WINTER), "2025-01-01T00:30:00Z"),
        (datetime(2026, 3, 2, 10, 29, 58, 123000, tzinfo=UTC), "2026-03-02T10:29:58.123000Z"),
        (datetime(2025, 1, 1, 12), "2025-01-01T12:00:00Z"),  # naive is read as UTC
        (None, None),
    ],
)
def test_a_moment_is_written_in_utc_with_a_z(moment, text):
    assert iso_utc(moment) == text


def test_it_matches_what_drf_wrote_before_so_no_api_body_changes():
    from rest_framework import serializers

    from gauntlet.api_fields import UtcDateTime

    moment = datetime(2025, 6, 30, 23, 59, 59, 5, tzinfo=PARIS_WINTER)
    assert UtcDateTime().to_representation(moment) == serializers.DateTimeField().to_representation(moment)
