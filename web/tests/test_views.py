"""Pages and their HTMX partials: what they show, when polling stops, how many queries they cost."""

import json
import re
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from agents.models import Invocation
from competitions.models import Competition, Participant
from competitions.tests.dashboard_data import InvocationFactory, RoundFactory, ledger_competition
from competitions.tests.factories import CompetitionFactory, ParticipantFactory
from trading.models import EquitySnapshot, Fill

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}


def dashboard_url(competition):
    return reverse("competition-dashboard", args=[competition.pk])


def participant_url(participant):
    return reverse("participant-detail", args=[participant.competition_id, participant.pk])


def leaderboard_names(html: str) -> list[str]:
    table = html.split('id="leaderboard"', 1)[1].split("</table>", 1)[0]
    return re.findall(
        r'<th scope="row">\s*<span class="swatch"[^>]*></span><a href="[^"]+">([^<]+)</a>', table
    )


@pytest.fixture
def competition():
    return ledger_competition(participants=3, rounds=4)


# --- competitions list ------------------------------------------------------------------------


def test_list_shows_each_competition_with_status_participants_and_leader(client, competition):
    CompetitionFactory(name="Finished cup", status=Competition.Status.COMPLETED)
    response = client.get(reverse("competition-list"))
    html = response.content.decode()
    assert response.status_code == 200
    assert competition.name in html and "Finished cup" in html
    row = html.split(competition.name, 1)[1].split("</tr>", 1)[0]
    assert '<td class="num">3</td>' in row  # participants
    assert '<td class="num hide-sm">4</td>' in row  # rounds
    leader = max(
        EquitySnapshot.objects.filter(account__participant__competition=competition, round_number=4),
        key=lambda snapshot: snapshot.equity,
    ).account.participant
    assert leader.name in row


def test_list_filters_by_status(client, competition):
    CompetitionFactory(name="Finished cup", status=Competition.Status.COMPLETED)
    html = client.get(reverse("competition-list"), {"status": "completed"}).content.decode()
    assert "Finished cup" in html
    assert competition.name not in html
    assert 'aria-current="page">Completed' in html


def test_list_htmx_request_gets_only_the_table_partial(client, competition):
    response = client.get(reverse("competition-list"), **HX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="competition-table"')
    assert "<html" not in html and competition.name in html


def test_list_is_two_queries_however_many_competitions(client, django_assert_max_num_queries):
    for _ in range(3):
        ledger_competition(participants=2, rounds=2)
    with django_assert_max_num_queries(4):  # session/auth lookups are not made for anonymous users
        assert client.get(reverse("competition-list")).status_code == 200


# --- dashboard ---------------------------------------------------------------------------------


def test_dashboard_page_has_header_leaderboard_chart_feed_fills_and_market(client, competition):
    response = client.get(dashboard_url(competition))
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" in html and 'id="live"' in html
    assert "Rounds</dt><dd>4" in html
    # total LLM cost: 3 participants x 4 rounds x $0.003
    assert "$0.0360" in html
    assert len(leaderboard_names(html)) == 3
    assert 'id="equity-chart"' in html and 'id="equity-chart-data"' in html
    assert "thinks round 4 is a trade" in html  # model chat shows the latest reasoning
    assert "BTC/USDT" in html and "Recent fills" in html
    assert "hx-trigger=\"every 3s [document.visibilityState === 'visible']\"" in html
    assert "X-CSRFToken" in html


def test_dashboard_htmx_request_gets_the_live_partial_only(client, competition):
    response = client.get(dashboard_url(competition), **HX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="live"')
    assert "<html" not in html and "<header" not in html
    assert 'id="equity-chart-data"' in html  # fresh figure for Plotly.react


def test_dashboard_stops_polling_with_286_when_completed(client, competition):
    Competition.objects.filter(pk=competition.pk).update(status=Competition.Status.COMPLETED)
    response = client.get(dashboard_url(competition), **HX)
    assert response.status_code == 286
    html = response.content.decode()
    assert "completed" in html
    assert "hx-trigger" not in html.split(">", 1)[0]  # the swapped-in region does not poll again


def test_dashboard_stops_polling_when_cancelled_but_full_page_is_200(client, competition):
    Competition.objects.filter(pk=competition.pk).update(status=Competition.Status.CANCELLED)
    assert client.get(dashboard_url(competition), **HX).status_code == 286
    assert client.get(dashboard_url(competition)).status_code == 200


def test_leaderboard_sorts_by_the_chosen_metric(client):
    competition = CompetitionFactory(status=Competition.Status.ACTIVE)
    rich, cheap = (ParticipantFactory(competition=competition, name=name) for name in ("Rich", "Cheap"))
    round_ = RoundFactory(competition=competition, number=1)
    from trading.services import account_open

    for participant, equity in ((rich, "11000"), (cheap, "10500")):
        account = account_open(participant=participant, initial_capital=competition.initial_capital)
        EquitySnapshot.objects.create(
            account=account, market_time=round_.market_time, round_number=1, equity=Decimal(equity),
            cash=Decimal(equity), unrealised_pnl=0, used_margin=0, free_margin=Decimal(equity),
            maintenance_requirement=0,
        )  # fmt: skip
    InvocationFactory(participant=rich, round=round_, cost_usd=Decimal("2.50"))
    InvocationFactory(participant=cheap, round=round_, cost_usd=Decimal("0.10"))
    assert leaderboard_names(client.get(dashboard_url(competition)).content.decode()) == ["Rich", "Cheap"]
    # LLM cost ranks lowest first
    html = client.get(dashboard_url(competition), {"sort": "llm_cost_usd"}).content.decode()
    assert leaderboard_names(html) == ["Cheap", "Rich"]
    assert f'hx-get="/competitions/{competition.pk}/?sort=llm_cost_usd"' in html  # polling keeps the sort
    # an unknown metric falls back to equity instead of failing
    html = client.get(dashboard_url(competition), {"sort": "__class__"}).content.decode()
    assert leaderboard_names(html) == ["Rich", "Cheap"]


def test_leaderboard_marks_baselines_and_greys_out_liquidated(client, competition):
    model = competition.participants.get(name="Model 2")
    Participant.objects.filter(pk=model.pk).update(status=Participant.Status.LIQUIDATED)
    html = client.get(dashboard_url(competition)).content.decode()
    table = html.split('id="leaderboard"', 1)[1].split("</table>", 1)[0]
    liquidated_row = re.search(f'<tr class="is-out" data-participant="{model.pk}">', table)
    assert liquidated_row is not None
    assert 'badge-liquidated">liquidated' in table
    assert table.count('class="badge badge-baseline"') == 1


def test_profit_and_loss_carry_sign_and_arrow_not_colour_alone(client, competition):
    html = client.get(dashboard_url(competition)).content.decode()
    signed = re.findall(r'<span class="(gain|loss)"><span aria-hidden="true">(▲|▼) </span>([+−])', html)
    assert signed
    for css, arrow, sign in signed:
        assert (css, arrow, sign) in {("gain", "▲", "+"), ("loss", "▼", "−")}


def test_dashboard_404_for_unknown_competition(client):
    assert client.get("/competitions/999999/").status_code == 404


def test_dashboard_of_a_draft_without_rounds_renders_empty_states(client):
    competition = CompetitionFactory()
    ParticipantFactory(competition=competition, name="Lonely")
    html = client.get(dashboard_url(competition)).content.decode()
    assert "No decisions yet" in html and "No fills yet" in html
    assert leaderboard_names(html) == ["Lonely"]


def test_staff_see_admin_links_and_others_do_not(client, competition):
    admin_link = reverse("admin:competitions_competition_change", args=[competition.pk])
    assert admin_link not in client.get(dashboard_url(competition)).content.decode()
    staff = get_user_model().objects.create_user("staff", password="pw", is_staff=True)
    client.force_login(staff)
    assert admin_link in client.get(dashboard_url(competition)).content.decode()


def test_dashboard_query_count_does_not_grow_with_participants_or_fills(
    client, django_assert_max_num_queries
):
    small = ledger_competition(participants=2, rounds=2)
    big = ledger_competition(participants=10, rounds=12, orders_per_round=2)
    assert Fill.objects.filter(account__participant__competition=big).count() == 10 * 12 * 2
    with django_assert_max_num_queries(16) as small_queries:
        client.get(dashboard_url(small))
    with django_assert_max_num_queries(16) as big_queries:
        client.get(dashboard_url(big))
    assert len(big_queries.captured_queries) == len(small_queries.captured_queries)
    with django_assert_max_num_queries(16):
        client.get(dashboard_url(big), **HX)


def test_dashboard_computes_the_benchmark_once_for_its_row_and_its_line(client, competition, monkeypatch):
    from competitions import selectors
    from competitions.selectors import benchmark

    calls = []
    load_round_prices = benchmark._load_round_prices

    def counted(*args, **kwargs):
        calls.append(args)
        return load_round_prices(*args, **kwargs)

    monkeypatch.setattr(benchmark, "_load_round_prices", counted)
    response = client.get(dashboard_url(competition))
    assert len(calls) == 1
    figure = response.context["equity_figure"]
    line = next(trace for trace in figure["data"] if trace["name"] == selectors.BENCHMARK_NAME)
    reference = selectors.buy_and_hold_reference(competition_id=competition.pk)
    assert line["y"] == [round(equity, 2) for _, equity in reference]  # the chart rounds to cents
    row = next(row for row in response.context["rows"] if row.is_benchmark)
    assert row.equity == reference[-1][1]


# --- participant page --------------------------------------------------------------------------


def test_participant_page_shows_book_fills_with_reasoning_and_invocation_log(client, competition):
    participant = competition.participants.get(name="Model 2")
    html = client.get(participant_url(participant)).content.decode()
    assert 'id="participant-equity"' in html and 'id="participant-drawdown"' in html
    # rounds alternate sell/buy 1000 notional of BTC: after 4 rounds the book is flat
    assert "Closed positions" in html and 'id="closed-positions"' in html
    assert 'id="fills"' in html
    assert "Model 2 thinks round 4 is a trade" in html  # a fill shows the reasoning behind it
    assert html.count('<details class="invocation"') == 4
    # cost and token counters: 4 invocations x 1000 input tokens, 4 x $0.003
    assert "Input tokens</dt><dd>4000" in html
    assert "$0.0120" in html


def test_participant_page_lists_open_positions_with_mark_leverage_and_liquidation(client):
    competition = ledger_competition(participants=1, rounds=1, baselines=0)
    participant = competition.participants.get()
    html = client.get(participant_url(participant)).content.decode()
    table = html.split('id="open-positions"', 1)[1].split("</table>", 1)[0]
    # round 1 sells 1000 USD of BTC at 2x: one short, marked at the round's snapshot price
    assert '<th scope="row">BTC/USDT</th>' in table and "<td>short</td>" in table
    assert "×</td>" in table  # leverage
    cells = re.findall(r'<td class="num">([^<]*)</td>', table)
    assert cells[-3] != "—"  # a short always has a finite liquidation price


def test_participant_htmx_partial_and_stop_polling(client, competition):
    participant = competition.participants.first()
    response = client.get(participant_url(participant), **HX)
    assert response.status_code == 200
    assert response.content.decode().lstrip().startswith('<div id="live"')
    # refreshing would close an open answer and drop rows loaded with "load more"
    html = client.get(participant_url(participant)).content.decode()
    assert "!this.querySelector('details[open], [data-more-loaded]')" in html
    Competition.objects.filter(pk=competition.pk).update(status=Competition.Status.COMPLETED)
    assert client.get(participant_url(participant), **HX).status_code == 286


def test_participant_of_another_competition_is_404(client, competition):
    other = ParticipantFactory()
    assert client.get(reverse("participant-detail", args=[competition.pk, other.pk])).status_code == 404


def test_participant_page_query_count_is_constant(client, django_assert_max_num_queries):
    small = ledger_competition(participants=1, rounds=2).participants.get()
    big = ledger_competition(participants=2, rounds=15, orders_per_round=2).participants.first()
    with django_assert_max_num_queries(20) as small_queries:
        client.get(participant_url(small))
    with django_assert_max_num_queries(20) as big_queries:
        client.get(participant_url(big))
    assert len(big_queries.captured_queries) == len(small_queries.captured_queries)


def test_participant_page_charts_and_counts_are_the_selectors_numbers(client):
    from competitions import selectors
    from web import figures
    from web.views import CHART_POINTS

    competition = ledger_competition(participants=2, rounds=6, orders_per_round=2)
    participant = competition.participants.order_by("id").last()
    response = client.get(participant_url(participant))
    equity = response.context["equity_figure"]["data"][0]
    expected = selectors.participant_equity_history(participant_id=participant.pk, target_points=CHART_POINTS)
    assert equity["y"] == [round(value, 2) for _, value in expected]  # the chart rounds to cents
    drawdown = response.context["drawdown_figure"]
    assert drawdown == figures.drawdown_figure(
        selectors.participant_drawdown_history(participant_id=participant.pk, target_points=CHART_POINTS),
        uirevision=f"drawdown-{participant.pk}",
    )
    # the page carries the figure as a json_script data island that plotly.js reads back
    html = response.content.decode()
    island = html.split('<script id="participant-drawdown-data" type="application/json">')[1]
    assert json.loads(island.split("</script>", 1)[0]) == json.loads(json.dumps(drawdown))
    closed = selectors.participant_positions(participant_id=participant.pk, status="closed")
    assert response.context["closed_count"] == len(closed) == 6
    assert [p.pk for p in response.context["closed_positions"]] == [p.pk for p in closed]


# --- invocation --------------------------------------------------------------------------------


def test_invocation_page_shows_exact_prompts_raw_response_decision_and_outcomes(client, competition):
    invocation = Invocation.objects.filter(participant__competition=competition).order_by("-id").first()
    Invocation.objects.filter(pk=invocation.pk).update(
        system_prompt="SYSTEM <rules> & limits", user_prompt="USER: BTC at 60000", raw_response="RAW {json}"
    )
    response = client.get(reverse("invocation-detail", args=[invocation.pk]))
    html = response.content.decode()
    assert "SYSTEM &lt;rules&gt; &amp; limits" in html  # exact text, escaped
    assert "USER: BTC at 60000" in html and "RAW {json}" in html
    assert "thinks round 4 is a trade" in html  # parsed decision
    assert "badge-filled" in html  # per-action outcome
    partial = client.get(reverse("invocation-detail", args=[invocation.pk]), **HX).content.decode()
    assert partial.lstrip().startswith('<div class="invocation-body">') and "<html" not in partial
    assert "USER: BTC at 60000" in partial


def test_invocation_page_keeps_a_reasoning_models_thinking_apart_and_names_the_mode(client, competition):
    invocation = Invocation.objects.filter(participant__competition=competition).order_by("-id").first()
    Invocation.objects.filter(pk=invocation.pk).update(
        reasoning_text="First I weigh <momentum> against funding.",
        raw_response='{"actions": []}',
        structured_output_mode="json_object_schema",
        escaped_characters=2,
    )
    html = client.get(reverse("invocation-detail", args=[invocation.pk])).content.decode()
    assert "Model&#x27;s reasoning" in html or "Model's reasoning" in html
    assert "First I weigh &lt;momentum&gt; against funding." in html
    assert "json_object_schema" in html
    assert "2 characters no database can store" in html


def test_participant_page_says_which_structured_output_mode_a_model_uses(client, competition):
    participant = ParticipantFactory(
        competition=competition, name="Local", llm_provider="openai_compatible", llm_model="smol",
        llm_config={"base_url": "http://127.0.0.1:9/v1", "structured_output": "json_object_schema"},
    )  # fmt: skip
    html = client.get(participant_url(participant)).content.decode()
    assert "Structured output" in html and "json_object_schema" in html
    baseline = competition.participants.filter(llm_provider="baseline").first()
    if baseline is not None:
        assert "Structured output" not in client.get(participant_url(baseline)).content.decode()


def test_invocation_404(client):
    assert client.get(reverse("invocation-detail", args=[424242])).status_code == 404


# --- compare -----------------------------------------------------------------------------------


def test_compare_page_shows_chosen_participants_metrics_and_significance(client, competition):
    first, second, third = competition.participants.order_by("id")
    response = client.get(
        reverse("competition-compare", args=[competition.pk]),
        {"p": [first.pk, third.pk], "statistic": "total_return"},
    )
    html = response.content.decode()
    assert response.status_code == 200
    metrics = html.split('id="compare-metrics"', 1)[1].split("</table>", 1)[0]
    assert first.name in metrics and third.name in metrics and second.name not in metrics
    significance = html.split('id="significance"', 1)[1].split("</table>", 1)[0]
    assert f"{first.name} vs {third.name}" in significance
    assert "4 shared rounds" in html
    partial = client.get(
        reverse("competition-compare", args=[competition.pk]), {"p": [first.pk, second.pk]}, **HX
    )
    assert partial.status_code == 200 and partial.content.decode().lstrip().startswith('<div id="live"')


def test_compare_defaults_to_the_first_two_and_ignores_strangers(client, competition):
    stranger = ParticipantFactory()
    html = client.get(
        reverse("competition-compare", args=[competition.pk]), {"p": [stranger.pk]}
    ).content.decode()
    first, second, _ = competition.participants.order_by("id")
    assert f"{first.name} vs {second.name}" in html
    assert stranger.name not in html.split('id="live"', 1)[1]


def test_compare_stops_polling_when_completed(client, competition):
    Competition.objects.filter(pk=competition.pk).update(status=Competition.Status.COMPLETED)
    assert client.get(reverse("competition-compare", args=[competition.pk]), **HX).status_code == 286


# --- assets ------------------------------------------------------------------------------------


def test_pages_use_vendored_assets_and_no_cdn(client, competition):
    html = client.get(dashboard_url(competition)).content.decode()
    assert "/static/vendor/htmx-2.0.11.min.js" in html
    assert "/static/vendor/plotly-3.7.0.min.js" in html
    assert not re.search(r'(src|href)="(https?:)?//', html)


@pytest.fixture(autouse=True)
def empty_cache():
    """Live regions are cached per data version; each test starts from an empty cache."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


def test_a_poll_with_nothing_new_is_served_from_the_cache_in_one_query(
    client, competition, django_assert_num_queries
):
    client.get(dashboard_url(competition), **HX)
    with django_assert_num_queries(1):
        response = client.get(dashboard_url(competition), **HX)
    assert response.status_code == 200 and "thinks round 4 is a trade" in response.content.decode()


def test_a_new_round_invalidates_the_cached_live_region(client, competition):
    client.get(dashboard_url(competition), **HX)
    round_ = RoundFactory(competition=competition, number=5)
    participant = competition.participants.first()
    InvocationFactory(
        participant=participant, round=round_, parsed_decision={"reasoning": "fresh idea in round 5"}
    )
    html = client.get(dashboard_url(competition), **HX).content.decode()
    assert "fresh idea in round 5" in html
    assert "Rounds</dt><dd>5" in html


def test_compare_page_tests_the_same_returns_as_the_selectors(competition):
    import analytics
    from competitions import selectors
    from web import page_queries

    first, second, _ = competition.participants.order_by("id")
    comparison = page_queries.compare_get(competition, participant_ids=[first.pk, second.pk])
    expected = selectors.aligned_returns(competition_id=competition.pk)
    mine = analytics.aligned_returns(comparison.histories)
    assert mine[first.pk] == pytest.approx(expected[first.name])
    assert mine[second.pk] == pytest.approx(expected[second.name])
    assert comparison.aligned_rounds == 4
