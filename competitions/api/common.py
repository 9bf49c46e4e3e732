"""Schema pieces every competitions endpoint shares: error responses, path ids, query parsing."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers

from . import examples


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField(required=False)


FIELD_ERRORS = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="Invalid input: `{field: [messages]}`, or `{detail, code}` when no single field is at fault",
    examples=[examples.FIELD_ERROR],
)
NOT_FOUND = OpenApiResponse(ErrorSerializer, description="No such object")
CONFLICT = OpenApiResponse(ErrorSerializer, description="Not allowed in the object's current state")
UNAUTHENTICATED = OpenApiResponse(ErrorSerializer, description="No X-API-Key header")
FORBIDDEN = OpenApiResponse(ErrorSerializer, description="The X-API-Key header holds no valid key")
THROTTLED = OpenApiResponse(ErrorSerializer, description="Too many writes; retry after Retry-After seconds")


def read_errors(*, not_found: bool = True, bad_query: bool = False) -> dict:
    errors = {401: UNAUTHENTICATED, 403: FORBIDDEN}
    if not_found:
        errors[404] = NOT_FOUND
    if bad_query:
        errors[400] = FIELD_ERRORS
    return errors


def write_errors(*, not_found: bool = True, conflict: bool = True, bad_input: bool = True) -> dict:
    errors = {401: UNAUTHENTICATED, 403: FORBIDDEN, 429: THROTTLED}
    if bad_input:
        errors[400] = FIELD_ERRORS
    if not_found:
        errors[404] = NOT_FOUND
    if conflict:
        errors[409] = CONFLICT
    return errors


def id_param(name: str, what: str) -> OpenApiParameter:
    return OpenApiParameter(name, OpenApiTypes.INT, OpenApiParameter.PATH, description=f"Id of the {what}")


COMPETITION_ID = id_param("id", "competition")
COMPETITION_FK = id_param("competition_id", "competition")
PARTICIPANT_ID = id_param("id", "participant")


def query_params(serializer_class, request) -> dict:
    """Validated query parameters (400 with the parameter named when one is wrong)."""
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class HistoryQuery(serializers.Serializer):
    target_points = serializers.IntegerField(
        min_value=2, max_value=5000, default=500, help_text="About how many points per series"
    )


def points(series) -> list[tuple]:
    return [(moment, value) for moment, value in series]
