import pytest
from django.core.cache import cache

from marketdata.sources import history, replay, synthetic


@pytest.fixture(autouse=True)
def fresh_market_data_caches():
    """Each test starts with empty candle and price caches (the DB rolls back, caches don't)."""
    replay.clear_cache()
    history.clear_instrument_cache()
    synthetic._cache.clear()
    cache.clear()
    yield
    replay.clear_cache()
    cache.clear()
