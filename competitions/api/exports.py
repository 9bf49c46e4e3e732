"""A whole competition's trades, equity snapshots or invocations, streamed as CSV or JSON for pandas."""

import csv
import json
from datetime import datetime
from decimal import Decimal

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.negotiation import BaseContentNegotiation

from gauntlet.api import ApiView
from gauntlet.timefmt import iso_utc

from .. import selectors
from . import examples
from .common import COMPETITION_ID, query_params, read_errors
from .fields import plain_decimal


class ExportQuery(serializers.Serializer):
    format = serializers.ChoiceField(choices=["csv", "json"], default="csv")
    what = serializers.ChoiceField(choices=["trades", "equity", "invocations"], default="trades")


# what -> (columns, the selector of its rows in that order)
EXPORTS = {
    "trades": (selectors.TRADE_EXPORT_COLUMNS, selectors.trade_export_rows),
    "equity": (selectors.EQUITY_EXPORT_COLUMNS, selectors.equity_export_rows),
    "invocations": (selectors.INVOCATION_EXPORT_COLUMNS, selectors.invocation_export_rows),
}


def export_value(value):
    """One cell: decimals exact, times ISO-8601 UTC, JSON kept as JSON (text in CSV)."""
    if isinstance(value, Decimal):
        return plain_decimal(value)
    if isinstance(value, datetime):
        return iso_utc(value)
    return value


def _csv_lines(columns, rows):
    class Echo:
        def write(self, value):
            return value

    writer = csv.writer(Echo())
    yield writer.writerow(columns)
    for row in rows.iterator(chunk_size=2000):
        cells = []
        for value in row:
            value = export_value(value)
            if isinstance(value, dict | list):
                value = json.dumps(value, separators=(",", ":"))
            cells.append("" if value is None else value)
        yield writer.writerow(cells)


def _json_lines(columns, rows):
    yield "["
    separator = ""
    for row in rows.iterator(chunk_size=2000):
        record = {column: export_value(value) for column, value in zip(columns, row)}
        yield separator + json.dumps(record, separators=(",", ":"))
        separator = ",\n"
    yield "]\n"


class ExportNegotiation(BaseContentNegotiation):
    """The export chooses its format with ?format=, which DRF would otherwise read as a renderer name."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class CompetitionExportView(ApiView):
    """Trades, equity snapshots or invocations of a whole competition, streamed for pandas."""

    content_negotiation_class = ExportNegotiation

    @extend_schema(
        operation_id="competitions_export",
        tags=["competitions"],
        summary="Stream a competition's trades, equity snapshots or invocations as CSV or JSON",
        description=(
            "Streamed row by row (constant memory whatever the size). CSV has a header row; JSON is one array "
            "of objects. Decimals are exact strings, times ISO-8601 UTC. Load with "
            "`pandas.read_csv(url)` or `pandas.read_json(url)`."
        ),
        parameters=[COMPETITION_ID, ExportQuery],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV with a header row"),
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.ANY, description="A JSON array of row objects"
            ),
            **read_errors(bad_query=True),
        },
        examples=examples.COMPETITIONS_EXPORT,
    )
    def get(self, request, id):
        query = query_params(ExportQuery, request)
        selectors.competition_ensure_exists(competition_id=id)
        columns, rows_of = EXPORTS[query["what"]]
        rows = rows_of(competition_id=id)
        filename = f"competition-{id}-{query['what']}.{query['format']}"
        if query["format"] == "csv":
            response = StreamingHttpResponse(
                _csv_lines(columns, rows), content_type="text/csv; charset=utf-8"
            )
        else:
            response = StreamingHttpResponse(_json_lines(columns, rows), content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
