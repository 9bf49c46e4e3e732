"""Read-only market data API (DRF APIViews), mounted under /api/v1/market-data/.

Key rules and throttling are the REST_FRAMEWORK defaults, as for every API view.
"""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from marketdata import selectors
from marketdata.serializers import (
    CandleSerializer,
    CandlesQuerySerializer,
    DatasetSerializer,
    InstrumentSerializer,
    SourceQuerySerializer,
    TickerSerializer,
    TickersQuerySerializer,
)
from marketdata.sources import ExchangeUnavailableError, MarketDataError, NoPriceError, StalePriceError

MAX_TICKERS = 50


def market_data_error(exc: MarketDataError) -> Response:
    if isinstance(exc, NoPriceError):
        code, http = "no_price", status.HTTP_404_NOT_FOUND
    elif isinstance(exc, StalePriceError):
        code, http = "stale_price", status.HTTP_503_SERVICE_UNAVAILABLE
    elif isinstance(exc, ExchangeUnavailableError):
        code, http = "exchange_unavailable", status.HTTP_503_SERVICE_UNAVAILABLE
    else:
        code, http = "market_data_error", status.HTTP_400_BAD_REQUEST
    return Response({"code": code, "detail": str(exc)}, status=http)


def unknown_live_symbols(symbols: list[str], source: str) -> Response | None:
    """A 404 for live symbols outside the instrument catalogue, None when all are known.

    Live prices cost a call to the exchange; a symbol no competition can trade (a typo, a
    fuzzer's "0") must not spend one, nor come back as a 503 as if the exchange were down.
    Replay and synthetic sources answer unknown symbols themselves without calling out.
    """
    if source != "live":
        return None
    known = selectors.instrument_map(symbols=symbols)
    unknown = [symbol for symbol in symbols if symbol not in known]
    if not unknown:
        return None
    return Response(
        {
            "code": "unknown_symbol",
            "detail": f"not in the instrument catalogue: {', '.join(unknown)} "
            "(GET /api/v1/market-data/instruments lists the known symbols)",
        },
        status=status.HTTP_404_NOT_FOUND,
    )


def _query(serializer_class, request):
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


SOURCE_PARAMETERS = [
    OpenApiParameter("source", str, enum=["replay", "live", "synthetic"], description="default replay"),
    OpenApiParameter("dataset", str, description='replay dataset, default "binance-1h"'),
]


class TickerListView(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("symbols", str, required=True), *SOURCE_PARAMETERS],
        responses=TickerSerializer(many=True),
    )
    def get(self, request):
        query = _query(TickersQuerySerializer, request)
        symbols = [selectors.symbol_from_path(s) for s in query["symbols"].split(",") if s.strip()]
        if not symbols or len(symbols) > MAX_TICKERS:
            return Response(
                {"code": "invalid", "detail": f"give between 1 and {MAX_TICKERS} symbols"},
                status=status.HTTP_400_BAD_REQUEST,
            )
        if refused := unknown_live_symbols(symbols, query["source"]):
            return refused
        try:
            tickers = selectors.ticker_list(
                symbols=symbols, source=query["source"], dataset=query.get("dataset")
            )
        except MarketDataError as exc:
            return market_data_error(exc)
        return Response(TickerSerializer(tickers, many=True).data)


class TickerView(APIView):
    @extend_schema(parameters=SOURCE_PARAMETERS, responses=TickerSerializer)
    def get(self, request, symbol: str):
        query = _query(SourceQuerySerializer, request)
        symbol = selectors.symbol_from_path(symbol)
        if refused := unknown_live_symbols([symbol], query["source"]):
            return refused
        try:
            ticker = selectors.ticker_get(
                symbol=symbol,
                source=query["source"],
                dataset=query.get("dataset"),
            )
        except MarketDataError as exc:
            return market_data_error(exc)
        return Response(TickerSerializer(ticker).data)


class CandleListView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("timeframe", str, description="default 1h"),
            OpenApiParameter("limit", int, description="1 to 1000, default 100"),
            OpenApiParameter("until", str, description="ISO-8601; only bars closed by then"),
            *SOURCE_PARAMETERS,
        ],
        responses=CandleSerializer(many=True),
    )
    def get(self, request, symbol: str):
        query = _query(CandlesQuerySerializer, request)
        symbol = selectors.symbol_from_path(symbol)
        if refused := unknown_live_symbols([symbol], query["source"]):
            return refused
        try:
            candles = selectors.candle_list(
                symbol=symbol,
                timeframe=query["timeframe"],
                limit=query["limit"],
                until=query.get("until"),
                source=query["source"],
                dataset=query.get("dataset"),
            )
        except MarketDataError as exc:
            return market_data_error(exc)
        except ValueError as exc:
            return Response({"code": "invalid", "detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(CandleSerializer(candles, many=True).data)


class DatasetListView(APIView):
    @extend_schema(responses=DatasetSerializer(many=True))
    def get(self, request):
        return Response(DatasetSerializer(selectors.dataset_list(), many=True).data)


class InstrumentListView(APIView):
    @extend_schema(responses=InstrumentSerializer(many=True))
    def get(self, request):
        return Response(InstrumentSerializer(selectors.instrument_list(), many=True).data)


__all__ = ["CandleListView", "DatasetListView", "InstrumentListView", "TickerListView", "TickerView"]
