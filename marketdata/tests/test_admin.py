"""Admin lists and edits instruments and shows dataset coverage."""

import pytest
from django.contrib.auth.models import User

from marketdata.models import Instrument

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(User.objects.create_superuser("admin", "a@example.com", "pw"))
    return client


def test_the_instrument_list_and_edit_pages_render(admin_client):
    page = admin_client.get("/admin/marketdata/instrument/")
    assert page.status_code == 200
    assert b"US500" in page.content and b"PEPE/USDT" in page.content
    us500 = Instrument.objects.get(symbol="US500")
    assert admin_client.get(f"/admin/marketdata/instrument/{us500.pk}/change/").status_code == 200


def test_an_exchange_session_without_hours_cannot_be_saved(admin_client):
    us500 = Instrument.objects.get(symbol="US500")
    response = admin_client.post(
        f"/admin/marketdata/instrument/{us500.pk}/change/",
        {
            "symbol": "US500", "name": "", "asset_class": "indices", "is_active": "on",
            "price_precision": 2, "quantity_precision": 2, "min_quantity": "0.01",
            "hours_kind": "exchange_session", "session_timezone": "America/New_York",
            "session_open": "", "session_close": "", "holidays": "",
            "default_fee_pct": "0", "default_spread_bps": "2", "default_slippage_bps": "1",
            "default_funding_rate_pct_8h": "0", "default_financing_rate_pct_annual": "3",
            "default_max_leverage": "20",
        },
    )  # fmt: skip
    assert response.status_code == 200  # the form comes back with the error
    assert b"an exchange session needs an open and a close time" in response.content
    assert Instrument.objects.get(symbol="US500").session_open is not None


def test_the_dataset_list_shows_coverage(admin_client, tmp_path):
    from marketdata.services import candles_import
    from marketdata.tests.helpers import csv_text, hourly

    path = tmp_path / "b.csv"
    path.write_text(csv_text(hourly(5)))
    candles_import(path=path, dataset_name="test-1h", symbol="BTC/USDT", timeframe="1h")
    page = admin_client.get("/admin/marketdata/dataset/")
    assert b"1 symbols, 5 rows, 2025-01-06 to 2025-01-06, 0 missing bars" in page.content


def test_holidays_are_typed_one_date_per_line_and_stored_as_a_json_list(admin_client):
    us500 = Instrument.objects.get(symbol="US500")
    url = f"/admin/marketdata/instrument/{us500.pk}/change/"
    data = {
        "symbol": "US500", "name": "US 500", "asset_class": "indices", "is_active": "on",
        "price_precision": 2, "quantity_precision": 2, "min_quantity": "0.01",
        "hours_kind": "exchange_session", "session_timezone": "America/New_York",
        "session_open": "09:30", "session_close": "16:00",
        "default_fee_pct": "0", "default_spread_bps": "2", "default_slippage_bps": "1",
        "default_funding_rate_pct_8h": "0", "default_financing_rate_pct_annual": "3",
        "default_max_leverage": "20",
    }  # fmt: skip
    response = admin_client.post(url, data | {"holidays": "2026-12-25\n 2026-07-03 \n\n2026-12-25"})
    assert response.status_code == 302
    us500.refresh_from_db()
    assert us500.holidays == ["2026-07-03", "2026-12-25"]
    form = admin_client.get(url).context["adminform"].form
    assert form["holidays"].value() == "2026-07-03\n2026-12-25"

    response = admin_client.post(url, data | {"holidays": "Christmas"})
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["holidays"] == ["'Christmas' is not a date like 2026-12-25."]
    us500.refresh_from_db()
    assert us500.holidays == ["2026-07-03", "2026-12-25"]
