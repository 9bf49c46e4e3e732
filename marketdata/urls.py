"""Market data API routes; the lead mounts them at /api/v1/market-data/.

Symbols in paths: "BTC-USDT" or "BTCUSDT" ("/" cannot sit in a path segment).
"""

from django.urls import path

from marketdata import api

app_name = "marketdata"

urlpatterns = [
    path("tickers", api.TickerListView.as_view(), name="tickers"),
    path("datasets", api.DatasetListView.as_view(), name="datasets"),
    path("instruments", api.InstrumentListView.as_view(), name="instruments"),
    path("<str:symbol>/ticker", api.TickerView.as_view(), name="ticker"),
    path("<str:symbol>/candles", api.CandleListView.as_view(), name="candles"),
]
