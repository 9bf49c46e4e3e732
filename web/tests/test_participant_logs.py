"""The participant page's long logs: the latest 50 of each, then "load more" a page at a time.

Closed positions, fills and invocations grow by one or more a round; after a few hundred
rounds the page would be metres tall. It shows PAGE_SIZE of each, and each "load more"
fetches the rows after the last one shown, in a fixed number of queries however long the log.
"""

import math
from copy import copy

import pytest
from django.urls import reverse

from agents.models import Invocation
from competitions import selectors
from competitions.tests.dashboard_data import InvocationFactory, RoundFactory, ledger_competition
from competitions.tests.factories import ParticipantFactory
from trading.models import Fill, Position
from web.views import PAGE_SIZE

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}
# log -> (URL name, context name of its rows)
LOGS = {
    "closed": ("participant-closed", "closed_positions"),
    "fills": ("participant-fills", "fills"),
    "invocations": ("participant-invocations", "invocations"),
}


@pytest.fixture(autouse=True)
def empty_cache():
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


def trader(rounds: int):
    """One participant who opened and closed a position every round: per round one closed
    position, two fills and one invocation."""
    competition = ledger_competition(participants=1, rounds=rounds, orders_per_round=2, baselines=0)
    return competition.participants.get()


def with_copies(participant, times: int):
    """`times` more copies of the participant's closed positions, fills and invocations (the
    copies' invocations in later rounds of their own). Copied fills and positions share their
    originals' times, so the pages must break ties by id. Quick to write, where the services
    take ~80 ms a round."""
    positions = list(Position.objects.filter(account__participant=participant, is_open=False))
    fills = list(Fill.objects.filter(account__participant=participant))
    invocations = list(Invocation.objects.filter(participant=participant).order_by("round__number"))
    last_round = participant.competition.rounds.order_by("-number").first().number
    for n in range(times):
        Position.objects.bulk_create([_copy(row) for row in positions])
        Fill.objects.bulk_create([_copy(row) for row in fills])
        for k, invocation in enumerate(invocations, start=1):
            number = last_round + n * len(invocations) + k
            round_ = RoundFactory(competition=participant.competition, number=number)
            InvocationFactory(
                participant=participant,
                round=round_,
                parsed_decision=invocation.parsed_decision,
                action_outcomes=invocation.action_outcomes,
            )


def _copy(row):
    clone = copy(row)
    clone.pk = None
    return clone


def page_url(participant) -> str:
    return reverse("participant-detail", args=[participant.competition_id, participant.pk])


def log_url(participant, log: str, before=None) -> str:
    url = reverse(LOGS[log][0], args=[participant.competition_id, participant.pk])
    return url if before is None else f"{url}?before={before}"


def test_the_page_shows_the_latest_page_of_each_log_and_a_load_more_for_the_rest(client):
    participant = trader(rounds=PAGE_SIZE + 5)
    response = client.get(page_url(participant))
    html = response.content.decode()
    context = response.context
    newest = selectors.participant_positions(participant_id=participant.pk, status="closed", limit=1)
    assert context["closed_positions"][0].pk == newest[0].pk
    for log, (_, name) in LOGS.items():
        rows = context[name]
        assert len(rows) == PAGE_SIZE
        # the button asks for what comes after the last row shown
        assert f'hx-get="{log_url(participant, log, rows[-1].id)}"' in html
    assert html.count('<details class="invocation"') == PAGE_SIZE
    assert html.count("Load older") == 3


def test_a_short_log_has_no_load_more(client):
    participant = trader(rounds=3)
    html = client.get(page_url(participant)).content
    assert b"Load older" not in html


@pytest.mark.parametrize("log", LOGS)
def test_loading_more_until_the_end_gives_every_row_once_in_order(client, log):
    participant = trader(rounds=PAGE_SIZE + 10)
    with_copies(participant, 1)  # 120 rows of each, every one tied in time with another
    everything = {
        "closed": selectors.participant_positions(participant_id=participant.pk, status="closed"),
        "fills": selectors.participant_fills(participant_id=participant.pk),
        "invocations": selectors.participant_invocations(participant_id=participant.pk),
    }[log]
    name = LOGS[log][1]
    page = client.get(page_url(participant))
    seen = [row.id for row in page.context[name]]
    more_url = page.context[f"{name}_more_url"]
    pages = 1
    while more_url:
        response = client.get(more_url, **HX)
        assert response.status_code == 200
        html = response.content.decode()
        assert "<html" not in html and "data-more-loaded" in html
        rows = response.context[name]
        seen += [row.id for row in rows]
        more_url = response.context[f"{name}_more_url"]
        if more_url:
            assert f'hx-get="{more_url}"' in html  # the next button comes with the page
        else:
            assert "Load older" not in html
        pages += 1
    assert seen == [row.id for row in everything]
    # originals and copies of 60 rounds: one position, two fills, one invocation a round
    rows = 2 * (PAGE_SIZE + 10) * (2 if log == "fills" else 1)
    assert len(seen) == rows
    assert pages == math.ceil(rows / PAGE_SIZE)


def row_ids(participant, log: str) -> list[int]:
    """The log's row ids, oldest first."""
    if log == "invocations":
        rows = Invocation.objects.filter(participant=participant)
    else:
        model = Position if log == "closed" else Fill
        rows = model.objects.filter(account__participant=participant)
    return list(rows.order_by("id").values_list("id", flat=True))


def test_the_page_and_each_log_page_cost_the_same_queries_for_50_or_500_rows(
    client, django_assert_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    short = trader(rounds=PAGE_SIZE)
    long = trader(rounds=PAGE_SIZE)
    with_copies(long, 9)
    for log in LOGS:  # 50 closed positions and invocations (100 fills) against ten times as many
        assert len(row_ids(long, log)) == 10 * len(row_ids(short, log)) >= 10 * PAGE_SIZE

    counts = []
    for participant in (short, long):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(page_url(participant))
        assert all(len(response.context[name]) == PAGE_SIZE for _, name in LOGS.values())
        counts.append(len(queries.captured_queries))
    assert counts[0] == counts[1]

    for log, (_, name) in LOGS.items():
        # the participant, then the rows (fills: and their reasoning); the anchor is in the same query
        queries = 3 if log == "fills" else 2
        for short_anchor, long_anchor in ((None, None), (row_ids(short, log)[-2], row_ids(long, log)[-2])):
            with django_assert_num_queries(queries):
                client.get(log_url(short, log, short_anchor), **HX)
            with django_assert_num_queries(queries):
                response = client.get(log_url(long, log, long_anchor), **HX)
            assert len(response.context[name]) == PAGE_SIZE


def test_loading_more_of_a_stranger_is_404(client):
    participant = trader(rounds=2)
    stranger = ParticipantFactory()
    url = reverse("participant-fills", args=[participant.competition_id, stranger.pk])
    assert client.get(url, **HX).status_code == 404


def test_an_unknown_anchor_gives_an_empty_page(client):
    participant = trader(rounds=2)
    response = client.get(log_url(participant, "fills", 987654), **HX)
    assert response.status_code == 200 and response.context["fills"] == []
