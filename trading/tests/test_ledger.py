"""trading.ledger: the one mapping between rows and the engine's values."""

import pytest

from marketdata.sources.history import InstrumentLookup, clear_instrument_cache
from marketdata.services import SHIPPED_FILE
from trading.ledger import instrument_spec

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("symbol", "asset_class"), [
    ("WIF/FDUSD", "crypto"), ("BTC/USDT", "crypto"), ("ETH/BTC", "crypto"), ("ABC/EUR", "unknown"),
])
def test_a_symbol_outside_the_catalogue_gets_one_asset_class_in_trading_and_in_marketdata(symbol, asset_class):
    """Trading (the engine's instrument) and the price sources read one list of crypto quotes:
    an FDUSD pair once was crypto to one and unknown to the other."""
    clear_instrument_cache()
    assert instrument_spec(symbol).asset_class == asset_class
    assert InstrumentLookup().asset_class(symbol) == asset_class
    clear_instrument_cache()


def test_the_shipped_file_pattern_knows_the_same_quotes():
    assert SHIPPED_FILE.match("WIFFDUSD-1h.csv").group("base", "quote") == ("WIF", "FDUSD")
