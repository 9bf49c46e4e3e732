"""The project's one way to write a moment as text: ISO-8601 in UTC with a "Z" suffix.

The API, the exports, the replay progress and the stored snapshots all show times this way,
so a client parsing one of them parses them all.
"""

from datetime import UTC, datetime


def iso_utc(moment: datetime | None) -> str | None:
    """"2025-01-01T00:00:00Z" (microseconds kept when present); None stays None.

    A naive moment is read as UTC, as every time in Gauntlet is.
    """
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    text = moment.astimezone(UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"
