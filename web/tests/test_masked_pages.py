"""A masked replay on the pages and the API (issue 16): everything stays in the masked world the
agents and the engine used, labelled with the real one ("ASSET_1 = BTC/USDT"); the prompt is shown
exactly as the model saw it, and says so."""

# ruff: noqa: F811 -- pytest fixtures imported from other test modules are test arguments

import json
import re
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.urls import reverse

from agents.decision import DecisionRules, decision_validate
from agents.invoke import AgentOutcome
from agents.models import Invocation
from agents.providers.base import AgentResponse
from competitions import services
from competitions.rounds import invoke as round_invoke
from competitions.rounds.replay import replay_run
from competitions.tests.conftest import replay_market  # noqa: F401
from competitions.tests.factories import START
from competitions.tests.test_api_fixtures import api_settings, client_with_key  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)
REAL = ["BTC/USDT", "ETH/USDT"]


@pytest.fixture
def masked_replay(replay_market):
    competition = services.competition_create(
        name="Masked cup", start_time=START, end_time=START + timedelta(hours=24), mode="replay",
        dataset=replay_market, timeframe="1h", symbols=list(REAL), masked=True, seed=7,
    )
    btc = competition.mask and next(m for m, r in competition.mask["symbols"].items() if r == "BTC/USDT")
    model = services.participant_register(competition_id=competition.pk, name="Model", llm_provider="openai",
                                          llm_model="gpt-test")
    services.participant_register(competition_id=competition.pk, name="Trend", llm_provider="baseline",
                                  llm_model="buy_and_hold")
    answers = iter([{"reasoning": "go", "actions": [{"action": "open", "symbol": btc, "side": "long",
                                                      "notional_usd": "3000", "leverage": 2}]}])
    real_invoke = round_invoke.invoke_agent

    def model_answers(**kwargs):
        if kwargs["provider"] != "openai":
            return real_invoke(**kwargs)
        answer = next(answers, {"reasoning": "wait", "actions": [{"action": "hold"}]})
        rules = DecisionRules(allowed_symbols=tuple(competition.symbols), max_leverage=Decimal(10))
        response = AgentResponse(raw_text=json.dumps(answer), status="success")
        return AgentOutcome("success", decision_validate(answer, rules), response)

    with mock.patch("competitions.rounds.invoke.invoke_agent", side_effect=model_answers):
        replay_run(competition_id=competition.pk, rounds=4)
    competition.refresh_from_db()
    return competition, model, btc


def _banner(html: str) -> str:
    return html.split('id="masked-banner"', 1)[1].split("</section>", 1)[0]


def test_the_dashboard_keeps_the_masked_world_and_names_the_real_one(client, masked_replay):
    competition, _, btc = masked_replay
    html = client.get(reverse("competition-dashboard", args=[competition.pk])).content.decode()

    banner = _banner(html)
    assert f"{btc}</strong> = BTC/USDT" in banner and "= ETH/USDT" in banner
    assert "masked price = real ×" in banner and "is really 2025-01-01 00:00 UTC" in banner
    strip = html.split('class="market-strip"', 1)[1].split("</ul>", 1)[0]
    assert f"{btc} <span class=\"real-name\"" in strip and "(BTC/USDT)" in strip
    facts = html.split('aria-label="Competition status"', 1)[1].split("</dl>", 1)[0]
    assert re.search(r"22\d\d-\d\d-\d\d \d\d:\d\d <span class=\"real-name\"[^>]*>\(really 2025-01-01", facts)
    fills = html.split('id="fills-heading"', 1)[1].split("</section>", 1)[0]
    assert f"{btc} <span class=\"real-name\"" in fills  # the masked name the engine filled, and the real one
    feed = html.split('id="feed-heading"', 1)[1].split("</section>", 1)[0]
    assert f"open long {btc} (BTC/USDT)" in feed


def test_the_participant_page_labels_positions_and_fills(client, masked_replay):
    competition, model, btc = masked_replay
    html = client.get(reverse("participant-detail", args=[competition.pk, model.pk])).content.decode()
    assert "(BTC/USDT)" in _banner(html) or "= BTC/USDT" in _banner(html)
    positions = html.split('id="open-positions"', 1)[1].split("</table>", 1)[0]
    assert f"{btc} <span class=\"real-name\"" in positions and "(BTC/USDT)" in positions
    price = Decimal(re.findall(r'<td class="num">([0-9,.]+)</td>', positions)[1].replace(",", ""))
    assert 100 <= price < 250  # the masked entry price the engine used, not BTC's 50,000


def test_the_invocation_page_shows_the_masked_prompt_as_the_model_saw_it_and_says_so(client, masked_replay):
    competition, model, btc = masked_replay
    invocation = Invocation.objects.filter(participant=model).order_by("round__number").first()
    html = client.get(reverse("invocation-detail", args=[invocation.pk])).content.decode()

    assert "exactly what the model saw" in _banner(html)
    assert "as the model saw it: masked" in html and f"{btc} = BTC/USDT" in html
    prompts = "".join(re.findall(r'<h3>(?:System|User) prompt.*?<pre class="block">(.*?)</pre>', html, re.S))
    assert btc in prompts and "BTC" not in prompts and "2025" not in prompts  # the masked world, untouched
    outcomes = html.split('class="outcomes"', 1)[1].split("</table>", 1)[0]
    assert f"open long {btc} (BTC/USDT)" in outcomes
    assert re.search(r"\(really 2025-01-01 0\d:00\)", html)


def test_the_compare_and_list_pages_say_it_is_masked_and_an_unmasked_replay_says_nothing(client, masked_replay):
    competition, _, _ = masked_replay
    compare = client.get(reverse("competition-compare", args=[competition.pk])).content.decode()
    assert 'id="masked-banner"' in compare
    listing = client.get(reverse("competition-list")).content.decode()
    assert "badge-masked" in listing.split("Masked cup", 1)[1].split("</th>", 1)[0]
    plain = services.competition_create(
        name="Plain cup", start_time=START, end_time=START + timedelta(hours=6), mode="replay",
        dataset=competition.dataset, timeframe="1h", symbols=list(REAL),
    )
    html = client.get(reverse("competition-dashboard", args=[plain.pk])).content.decode()
    assert 'id="masked-banner"' not in html and "real-name" not in html


def test_the_api_gives_the_way_back_and_keeps_the_rows_masked(client_with_key, masked_replay):
    competition, model, btc = masked_replay
    body = client_with_key.get(f"/api/v1/competitions/{competition.pk}").json()
    world = body["masked_world"]
    assert world["symbols"][btc] == "BTC/USDT" and world["shift_weeks"] == competition.mask["shift_weeks"]
    scale = Decimal(world["price_scales"][btc])
    assert body["real_start_time"] == "2025-01-01T00:00:00Z"
    # the rows hold the masked world; the way back turns a masked price into the real one
    trades = client_with_key.get(f"/api/v1/participants/{model.pk}/portfolio").json()
    position = next(p for p in trades["positions"] if p["symbol"] == btc)
    assert 45000 <= Decimal(position["entry_price"]) / scale <= 57000  # BTC's real level in the test data
    plain = services.competition_create(
        name="Plain", start_time=START, end_time=START + timedelta(hours=6), mode="replay",
        dataset=competition.dataset, timeframe="1h", symbols=list(REAL),
    )
    assert client_with_key.get(f"/api/v1/competitions/{plain.pk}").json()["masked_world"] is None
