"""A replay played through the API: rounds, the book of each participant, leaderboard, history, exports.

Prices come from the conftest's test dataset: at round r (START + r hours) BTC/USDT is
51190 + 10r and ETH/USDT 1881 - r; every cost is zero, so each number is worked by hand.
"""

# ruff: noqa: F811 -- pytest fixtures imported from test_api_fixtures are test arguments

import csv
import io
import json
from datetime import timedelta

import pytest

from competitions.models import Competition, Round
from competitions.tests.factories import START
from competitions.tests.test_api_fixtures import (  # noqa: F401 -- fixtures
    anonymous,
    api_settings,
    client_with_key,
    instruments,
)

pytestmark = pytest.mark.django_db(transaction=True)

OPEN_BTC = {
    "reasoning": "trend up",
    "actions": [{"action": "open", "symbol": "BTC/USDT", "side": "long", "quantity": "0.1", "leverage": "2"}],
}
HOLD = {"reasoning": "wait", "actions": [{"action": "hold"}]}
CLOSE_BTC = {
    "reasoning": "take profit",
    "actions": [{"action": "close", "symbol": "BTC/USDT", "quantity": None}],
}


@pytest.fixture(autouse=True)
def in_process_runner(settings, instruments):
    """Rounds run inside the request, against the seeded instrument catalogue."""
    settings.ROUND_RUNNER = "inprocess"


def create_competition(client, dataset, **overrides):
    body = {
        "name": "API replay",
        "start_time": START.isoformat(),
        "end_time": (START + timedelta(hours=24)).isoformat(),
        "invocation_interval_minutes": 60,
        "initial_capital": "10000",
        "max_leverage": "10",
        "margin_requirement_pct": "10",
        "maintenance_margin_pct": "5",
        "max_position_size_pct": "50",
        "allowed_asset_classes": ["crypto"],
        "symbols": ["BTC/USDT", "ETH/USDT"],
        "mode": "replay",
        "dataset": dataset,
        "fee_pct": "0",
        "spread_bps": "0",
        "slippage_bps": "0",
        "funding_rate_pct_8h": "0",
        "financing_rate_pct_annual": "0",
        **overrides,
    }
    response = client.post("/api/v1/competitions", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()["id"]


def register(client, competition_id, name, decisions):
    response = client.post(
        f"/api/v1/participants/competitions/{competition_id}/participants",
        {
            "name": name,
            "llm_provider": "scripted",
            "llm_model": "script",
            "llm_config": {"decisions": decisions},
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    return response.json()["id"]


def run_round(client, competition_id):
    response = client.post(f"/api/v1/competitions/{competition_id}/rounds")
    assert response.status_code == 201, response.json()
    return response.json()["round"]


@pytest.fixture
def played(client_with_key, replay_market):
    """Buyer opens 0.1 BTC at round 0, holds at 1, closes at 2; Holder never trades."""
    competition_id = create_competition(client_with_key, replay_market)
    buyer = register(client_with_key, competition_id, "Buyer", [OPEN_BTC, HOLD, CLOSE_BTC])
    holder = register(client_with_key, competition_id, "Holder", [])
    assert client_with_key.post(f"/api/v1/competitions/{competition_id}/start").status_code == 200
    return {"competition": competition_id, "buyer": buyer, "holder": holder, "client": client_with_key}


def test_a_round_run_through_the_api_comes_back_completed(played):
    round_ = run_round(played["client"], played["competition"])

    assert round_["number"] == 0
    assert round_["status"] == "completed"
    assert round_["market_time"] == "2025-01-01T00:00:00Z"
    assert round_["invocation_count"] == 2


def test_the_portfolio_is_marked_at_the_last_rounds_price(played, anonymous):
    run_round(played["client"], played["competition"])
    run_round(played["client"], played["competition"])

    portfolio = anonymous.get(f"/api/v1/participants/{played['buyer']}/portfolio").json()

    # 0.1 BTC bought at 51190, marked at 51200: +1; no costs, so cash is untouched.
    assert portfolio["marked_at"] == "2025-01-01T01:00:00Z"
    assert portfolio["cash"] == "10000"
    assert portfolio["unrealised_pnl"] == "1"
    assert portfolio["equity"] == "10001"
    [position] = portfolio["positions"]
    assert position["symbol"] == "BTC/USDT" and position["side"] == "long" and position["is_open"] is True
    assert position["quantity"] == "0.1"
    assert position["entry_price"] == "51190"
    assert position["mark_price"] == "51200"
    assert position["unrealised_pnl"] == "1"
    # 0.1 x 51190 = 5119 of notional at 2x: 2559.5 of margin
    assert position["initial_margin"] == "2559.5"
    assert portfolio["used_margin"] == "2559.5"
    assert portfolio["free_margin"] == "7441.5"  # 10001 - 2559.5


def test_positions_list_open_then_closed_with_the_realised_result(played, anonymous):
    for _ in range(2):
        run_round(played["client"], played["competition"])
    url = f"/api/v1/participants/{played['buyer']}/positions"
    open_page = anonymous.get(url).json()
    run_round(played["client"], played["competition"])
    closed_page = anonymous.get(url, {"status": "closed"}).json()
    open_after = anonymous.get(url, {"status": "open"}).json()

    assert open_page["count"] == 1 and open_page["results"][0]["mark_price"] == "51200"
    assert open_after["count"] == 0
    [closed] = closed_page["results"]
    assert closed["is_open"] is False
    assert closed["exit_price"] == "51210"
    assert closed["realised_pnl"] == "2"  # 0.1 x (51210 - 51190)
    assert closed["net_pnl"] == "2"
    assert closed["closed_at"] == "2025-01-01T02:00:00Z"


def test_trades_are_newest_first_with_the_fill_reason_and_the_decisions_reasoning(played, anonymous):
    for _ in range(3):
        run_round(played["client"], played["competition"])

    page = anonymous.get(f"/api/v1/participants/{played['buyer']}/trades").json()
    second_page = anonymous.get(
        f"/api/v1/participants/{played['buyer']}/trades", {"limit": 1, "offset": 1}
    ).json()

    assert page["count"] == 2
    sell, buy = page["results"]
    assert (sell["side"], sell["price"], sell["realised_pnl"], sell["closes"]) == ("sell", "51210", "2", True)
    assert (buy["side"], buy["price"], buy["quantity"], buy["closes"]) == ("buy", "51190", "0.1", False)
    assert sell["reason"] == buy["reason"] == "agent"
    assert sell["reasoning"] == "take profit"
    assert buy["reasoning"] == "trend up"
    assert [t["id"] for t in second_page["results"]] == [buy["id"]]
    assert second_page["count"] == 2


def test_invocations_are_full_records_filterable_by_status(played, anonymous):
    for _ in range(3):
        run_round(played["client"], played["competition"])
    url = f"/api/v1/participants/{played['buyer']}/invocations"

    page = anonymous.get(url).json()
    errors = anonymous.get(url, {"status": "error"}).json()
    bad = anonymous.get(url, {"status": "sort-of"})

    assert [i["round_number"] for i in page["results"]] == [2, 1, 0]
    latest = page["results"][0]
    assert latest["status"] == "success"
    assert latest["parsed_decision"]["reasoning"] == "take profit"
    assert latest["user_prompt"] and latest["system_prompt"]
    assert json.loads(latest["raw_response"]) == CLOSE_BTC
    assert latest["action_outcomes"][0]["status"] == "filled"
    assert errors["count"] == 0
    assert bad.status_code == 400 and "status" in bad.json()


def test_the_leaderboard_ranks_by_the_metric_asked(played, anonymous):
    for _ in range(3):
        run_round(played["client"], played["competition"])
    url = f"/api/v1/leaderboard/competitions/{played['competition']}/leaderboard"

    by_equity = anonymous.get(url, {"metric": "equity"}).json()
    top_one = anonymous.get(url, {"metric": "return_pct", "limit": 1}).json()
    with_benchmark = anonymous.get(url, {"include_benchmark": "true"}).json()

    assert by_equity["metric"] == "equity"
    assert [(r["rank"], r["name"], r["equity"]) for r in by_equity["results"]] == [
        (1, "Buyer", 10002.0),
        (2, "Holder", 10000.0),
    ]
    assert by_equity["results"][0]["return_pct"] == pytest.approx(0.02)  # 2 / 10000 x 100
    assert by_equity["results"][0]["trades"] == 1
    assert [r["name"] for r in top_one["results"]] == ["Buyer"]
    assert any(r["is_benchmark"] and r["rank"] is None for r in with_benchmark["results"])


@pytest.mark.parametrize(
    ("params", "field"), [({"metric": "vibes"}, "metric"), ({"limit": 0}, "limit"), ({"limit": "x"}, "limit")]
)
def test_the_leaderboard_refuses_bad_parameters(played, anonymous, params, field):
    response = anonymous.get(f"/api/v1/leaderboard/competitions/{played['competition']}/leaderboard", params)

    assert response.status_code == 400
    assert field in response.json()


def test_performance_is_the_participants_leaderboard_line(played, anonymous):
    for _ in range(3):
        run_round(played["client"], played["competition"])

    line = anonymous.get(f"/api/v1/participants/{played['buyer']}/performance").json()

    assert line["rank"] is None
    assert line["equity"] == 10002.0
    assert line["pnl"] == pytest.approx(2.0)
    assert line["trades"] == 1 and line["wins"] == 1
    assert line["invocations"] == 3


def test_histories_start_at_the_capital_and_end_at_the_last_equity(played, anonymous):
    for _ in range(3):
        run_round(played["client"], played["competition"])

    competition = anonymous.get(f"/api/v1/competitions/{played['competition']}/history").json()
    participant = anonymous.get(f"/api/v1/participants/{played['buyer']}/history").json()
    coarse = anonymous.get(f"/api/v1/participants/{played['buyer']}/history", {"target_points": 2}).json()

    curves = {c["name"]: [p["value"] for p in c["points"]] for c in competition["participants"]}
    # capital, then rounds 0, 1, 2: flat at the buy, +1 marked, +2 realised
    assert curves["Buyer"] == [10000.0, 10000.0, 10001.0, 10002.0]
    assert curves["Holder"] == [10000.0] * 4
    assert participant["equity"][0]["time"] == "2024-12-31T23:00:00Z"  # one interval before round 0
    assert [p["value"] for p in participant["drawdown"]] == [0.0, 0.0, 0.0, 0.0]
    assert coarse["equity"][0]["value"] == 10000.0 and coarse["equity"][-1]["value"] == 10002.0
    assert len(coarse["equity"]) <= 3


def test_history_refuses_a_target_below_two_points(played, anonymous):
    response = anonymous.get(f"/api/v1/competitions/{played['competition']}/history", {"target_points": 1})

    assert response.status_code == 400
    assert "target_points" in response.json()


def test_rounds_list_oldest_first_with_their_invocations_counted(played, anonymous):
    for _ in range(3):
        run_round(played["client"], played["competition"])

    page = anonymous.get(f"/api/v1/competitions/{played['competition']}/rounds").json()

    assert page["count"] == 3
    assert [(r["number"], r["status"], r["invocation_count"]) for r in page["results"]] == [
        (0, "completed", 2),
        (1, "completed", 2),
        (2, "completed", 2),
    ]


def test_a_round_of_a_competition_that_is_not_active_is_a_409(client_with_key, replay_market):
    competition_id = create_competition(client_with_key, replay_market)

    response = client_with_key.post(f"/api/v1/competitions/{competition_id}/rounds")

    assert response.status_code == 409
    assert response.json()["code"] == "not_active"
    assert not Round.objects.exists()


def test_the_last_replay_round_completes_the_competition(client_with_key, replay_market):
    competition_id = create_competition(
        client_with_key, replay_market, end_time=(START + timedelta(hours=2)).isoformat()
    )
    register(client_with_key, competition_id, "Buyer", [OPEN_BTC])
    client_with_key.post(f"/api/v1/competitions/{competition_id}/start")

    numbers = [run_round(client_with_key, competition_id)["number"] for _ in range(3)]

    assert numbers == [0, 1, 2]
    assert Competition.objects.get(pk=competition_id).status == "completed"
    final = client_with_key.get(
        f"/api/v1/participants/{Competition.objects.get(pk=competition_id).participants.get().pk}/positions",
        {"status": "closed"},
    ).json()
    assert final["results"][0]["close_reason"] == "competition_end"


def _body(response) -> str:
    return b"".join(response.streaming_content).decode()


def test_the_trades_export_streams_csv_that_reads_back_exactly(played, anonymous):
    for _ in range(3):
        run_round(played["client"], played["competition"])

    response = anonymous.get(
        f"/api/v1/competitions/{played['competition']}/export", {"format": "csv", "what": "trades"}
    )

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert "competition-" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(_body(response))))
    assert [(r["side"], r["price"], r["reasoning"]) for r in rows] == [
        ("buy", "51190", "trend up"),
        ("sell", "51210", "take profit"),
    ]
    assert rows[1]["realised_pnl"] == "2"
    assert rows[0]["market_time"] == "2025-01-01T00:00:00Z"
    assert rows[0]["participant"] == "Buyer"


def test_the_equity_export_streams_json_one_object_per_snapshot(played, anonymous):
    for _ in range(3):
        run_round(played["client"], played["competition"])

    response = anonymous.get(
        f"/api/v1/competitions/{played['competition']}/export", {"format": "json", "what": "equity"}
    )

    assert response["Content-Type"] == "application/json"
    records = json.loads(_body(response))
    assert len(records) == 6  # 2 participants x 3 rounds
    buyer = [r["equity"] for r in records if r["participant"] == "Buyer"]
    assert buyer == ["10000", "10001", "10002"]


def test_the_invocations_export_keeps_actions_as_json(played, anonymous):
    for _ in range(2):
        run_round(played["client"], played["competition"])

    response = anonymous.get(
        f"/api/v1/competitions/{played['competition']}/export", {"format": "csv", "what": "invocations"}
    )

    rows = list(csv.DictReader(io.StringIO(_body(response))))
    assert len(rows) == 4
    first = next(r for r in rows if r["participant"] == "Buyer" and r["round_number"] == "0")
    assert json.loads(first["actions"])[0]["symbol"] == "BTC/USDT"
    assert first["reasoning"] == "trend up"


@pytest.mark.parametrize(("params", "field"), [({"format": "xlsx"}, "format"), ({"what": "secrets"}, "what")])
def test_the_export_refuses_unknown_formats_and_contents(played, anonymous, params, field):
    response = anonymous.get(f"/api/v1/competitions/{played['competition']}/export", params)

    assert response.status_code == 400
    assert field in response.json()


def test_the_export_of_a_missing_competition_is_a_404(anonymous, db):
    assert anonymous.get("/api/v1/competitions/424242/export").status_code == 404


def test_with_celery_the_round_is_queued_and_answered_202(played, settings, monkeypatch):
    settings.ROUND_RUNNER = "celery"
    queued = []
    monkeypatch.setattr(
        "competitions.tasks.round_trigger_task.delay", lambda competition_id: queued.append(competition_id)
    )

    response = played["client"].post(f"/api/v1/competitions/{played['competition']}/rounds")

    assert response.status_code == 202
    assert response.json() == {"queued": True, "round": None}
    assert queued == [played["competition"]]
    assert not Round.objects.exists()
