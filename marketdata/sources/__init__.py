"""Price sources behind one protocol: `get_source("replay" | "live" | "synthetic", **options)`."""

from marketdata.sources.base import (
    SOURCES,
    BarSource,
    ExchangeUnavailableError,
    MarketDataError,
    NoPriceError,
    PriceSource,
    StalePriceError,
    UnknownSourceError,
    get_source,
    register,
)
from marketdata.sources.live import LiveSource
from marketdata.sources.replay import ReplaySource
from marketdata.sources.synthetic import SyntheticSource

__all__ = [
    "SOURCES",
    "BarSource",
    "ExchangeUnavailableError",
    "LiveSource",
    "MarketDataError",
    "NoPriceError",
    "PriceSource",
    "ReplaySource",
    "StalePriceError",
    "SyntheticSource",
    "UnknownSourceError",
    "get_source",
    "register",
]
