"""limit/offset pages for /api/v1: the strict paginator every list uses, and a page over a selector."""

from rest_framework import exceptions
from rest_framework.pagination import LimitOffsetPagination


class StrictLimitOffsetPagination(LimitOffsetPagination):
    """limit/offset pages; a malformed limit or offset is a 400, not silently ignored."""

    default_limit = 50
    max_limit = 500

    def _param(self, request, name: str, *, minimum: int) -> int | None:
        raw = request.query_params.get(name)
        if raw is None:
            return None
        try:
            value = int(raw)
        except ValueError:
            raise exceptions.ValidationError({name: [f"{name} must be an integer"]}) from None
        if value < minimum:
            raise exceptions.ValidationError({name: [f"{name} must be at least {minimum}"]})
        return value

    def get_limit(self, request):
        limit = self._param(request, self.limit_query_param, minimum=1)
        if limit is None:
            return self.default_limit
        return min(limit, self.max_limit)

    def get_offset(self, request):
        return self._param(request, self.offset_query_param, minimum=0) or 0

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.limit_query_param,
                "required": False,
                "in": "query",
                "description": f"Number of results per page (default {self.default_limit}, at most {self.max_limit}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_limit},
            },
            {
                "name": self.offset_query_param,
                "required": False,
                "in": "query",
                "description": "Index of the first result to return.",
                "schema": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
            },
        ]


class SelectorPage:
    """A limit/offset page over a selector that returns the newest `limit` rows: count once,
    fetch offset + limit rows, keep the page (a fixed number of queries at any depth)."""

    def __init__(self, view, count: int, fetch):
        self.view, self.count, self.fetch = view, count, fetch

    def response(self, serializer_class):
        paginator = self.view.pagination_class()
        request = self.view.request
        paginator.request = request
        paginator.limit = paginator.get_limit(request)
        paginator.offset = paginator.get_offset(request)
        paginator.count = self.count
        rows = self.fetch(paginator.offset + paginator.limit)[paginator.offset :] if self.count else []
        return paginator.get_paginated_response(serializer_class(rows, many=True).data)
