"""Reads the REST API needs that the pages do not: competitions with their participant count,
participants, rounds, full invocation records and the row streams of the exports.

Each returns a queryset or rows in a fixed number of queries, and raises the model's
DoesNotExist (a 404 in the API) when the object is missing.
"""

from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.fields.json import KeyTextTransform, KeyTransform

from agents.models import Invocation
from trading.models import EquitySnapshot, Fill

from ..models import Competition, Participant, Round

# -- competitions ----------------------------------------------------------------------------


def _competitions_counted() -> QuerySet[Competition]:
    return Competition.objects.annotate(participant_count=Count("participants", distinct=True))


def competition_counted_list(*, status: str | None = None, mode: str | None = None) -> QuerySet[Competition]:
    """Competitions newest first, each with participant_count (any status). One query per page."""
    filters = {name: value for name, value in {"status": status, "mode": mode}.items() if value is not None}
    return _competitions_counted().filter(**filters).order_by("-created_at", "-id")


def competition_counted_get(*, competition_id: int) -> Competition:
    """One competition with participant_count. One query."""
    return _competitions_counted().get(pk=competition_id)


def competition_get(*, competition_id: int) -> Competition:
    return Competition.objects.get(pk=competition_id)


def competition_ensure_exists(*, competition_id: int) -> None:
    """Raise Competition.DoesNotExist unless the competition exists (one EXISTS query)."""
    if not Competition.objects.filter(pk=competition_id).exists():
        raise Competition.DoesNotExist


# -- participants ----------------------------------------------------------------------------


def participant_list(*, competition_id: int) -> QuerySet[Participant]:
    """The competition's participants in registration order."""
    return Participant.objects.filter(competition_id=competition_id).order_by("id")


def participant_names(*, competition_id: int) -> dict[int, str]:
    """participant id -> name, one query."""
    return dict(participant_list(competition_id=competition_id).values_list("id", "name"))


def participant_get(*, participant_id: int) -> Participant:
    return Participant.objects.get(pk=participant_id)


def participant_with_competition_get(*, participant_id: int) -> Participant:
    """The participant and its competition in one query (its book needs the rules)."""
    return Participant.objects.select_related("competition").get(pk=participant_id)


# -- rounds and invocations ------------------------------------------------------------------


def round_list(*, competition_id: int) -> QuerySet[Round]:
    """Rounds oldest first, each with invocation_count."""
    return (
        Round.objects.filter(competition_id=competition_id)
        .annotate(invocation_count=Count("invocations"))
        .order_by("number")
    )


def invocation_record_list(*, participant_id: int, status: str | None = None) -> QuerySet[Invocation]:
    """Full invocation records (prompts included), newest round first. agents.selectors has no
    list of full records (competitions.selectors.participant_invocations leaves the prompts out)."""
    rows = Invocation.objects.filter(participant_id=participant_id).select_related("round")
    if status:
        rows = rows.filter(status=status)
    return rows.order_by("-round__number", "-id")


# -- export rows -----------------------------------------------------------------------------
# what -> (columns, rows as tuples in that order); one query each, meant to be streamed with
# .iterator() so a competition of any size is exported in constant memory.

TRADE_EXPORT_COLUMNS = [
    "fill_id",
    "participant_id",
    "participant",
    "market_time",
    "symbol",
    "side",
    "quantity",
    "price",
    "fee",
    "realised_pnl",
    "closes",
    "reason",
    "order_id",
    "invocation_id",
    "reasoning",
]

EQUITY_EXPORT_COLUMNS = [
    "participant_id",
    "participant",
    "market_time",
    "round_number",
    "equity",
    "cash",
    "unrealised_pnl",
    "used_margin",
    "free_margin",
    "maintenance_requirement",
    "open_positions",
]

INVOCATION_EXPORT_COLUMNS = [
    "invocation_id",
    "participant_id",
    "participant",
    "round_number",
    "market_time",
    "provider",
    "model",
    "prompt_version",
    "status",
    "error",
    "latency_ms",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "retries",
    "reasoning",
    "actions",
    "action_outcomes",
    "created_at",
]


def _reasoning_of_order():
    return Subquery(
        Invocation.objects.filter(pk=OuterRef("order__invocation_id")).values(
            reasoning=KeyTextTransform("reasoning", "parsed_decision")
        )[:1]
    )


def trade_export_rows(*, competition_id: int) -> QuerySet:
    """Every fill of the competition in market-time order, with the reasoning behind its order."""
    return (
        Fill.objects.filter(account__participant__competition_id=competition_id)
        .annotate(reasoning=_reasoning_of_order())
        .order_by("market_time", "id")
        .values_list(
            "id",
            "account__participant_id",
            "account__participant__name",
            "market_time",
            "symbol",
            "side",
            "quantity",
            "price",
            "fee",
            "realised_pnl",
            "closes",
            "reason",
            "order_id",
            "order__invocation_id",
            "reasoning",
        )
    )


def equity_export_rows(*, competition_id: int) -> QuerySet:
    """Every equity snapshot of the competition in market-time order."""
    return (
        EquitySnapshot.objects.filter(account__participant__competition_id=competition_id)
        .order_by("market_time", "account__participant_id", "id")
        .values_list("account__participant_id", "account__participant__name", *EQUITY_EXPORT_COLUMNS[2:])
    )


def invocation_export_rows(*, competition_id: int) -> QuerySet:
    """Every invocation of the competition, round by round, with its reasoning and actions."""
    return (
        Invocation.objects.filter(participant__competition_id=competition_id)
        .order_by("round__number", "participant_id", "id")
        .values_list(
            "id",
            "participant_id",
            "participant__name",
            "round__number",
            "round__market_time",
            "provider",
            "model",
            "prompt_version",
            "status",
            "error",
            "latency_ms",
            "input_tokens",
            "output_tokens",
            "cost_usd",
            "retries",
            KeyTextTransform("reasoning", "parsed_decision"),
            KeyTransform("actions", "parsed_decision"),
            "action_outcomes",
            "created_at",
        )
    )
