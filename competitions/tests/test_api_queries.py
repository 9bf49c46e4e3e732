"""Every read endpoint runs a fixed number of SQL queries, whatever the number of participants,
rounds, trades or invocations: a competition three times bigger costs exactly the same
queries, and each endpoint stays under a stated bound."""

# ruff: noqa: F811 -- pytest fixtures imported from test_api_fixtures are test arguments

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from competitions.tests.test_api_fixtures import (  # noqa: F401 -- fixtures
    anonymous,
    api_settings,
    client_with_key,
    instruments,
)
from competitions.tests.test_api_rounds import (  # noqa: F401 -- in_process_runner is a fixture
    CLOSE_BTC,
    OPEN_BTC,
    create_competition,
    in_process_runner,
    register,
    run_round,
)

pytestmark = pytest.mark.django_db(transaction=True)

# path (c = competition id, p = participant id) -> most queries allowed. Endpoints that read
# through competitions.selectors (history, leaderboard, performance) get two queries of
# headroom over today's count, as those selectors evolve; the equality of the small and the
# big competition's counts is the invariant.
BOUNDS = {
    "/api/v1/competitions": 2,
    "/api/v1/competitions/{c}": 1,
    "/api/v1/competitions/{c}/rounds": 3,
    "/api/v1/competitions/{c}/history": 10,
    "/api/v1/leaderboard/competitions/{c}/leaderboard": 12,
    "/api/v1/leaderboard/competitions/{c}/leaderboard?include_benchmark=true&metric=sharpe": 13,
    "/api/v1/participants/competitions/{c}/all": 3,
    "/api/v1/participants/{p}": 1,
    "/api/v1/participants/{p}/portfolio": 4,
    "/api/v1/participants/{p}/positions": 4,
    "/api/v1/participants/{p}/positions?status=closed": 3,
    "/api/v1/participants/{p}/trades": 4,
    "/api/v1/participants/{p}/performance": 12,
    "/api/v1/participants/{p}/history": 9,
    "/api/v1/participants/{p}/invocations": 3,
    "/api/v1/competitions/{c}/export?what=trades": 2,
    "/api/v1/competitions/{c}/export?what=equity&format=json": 2,
    "/api/v1/competitions/{c}/export?what=invocations": 2,
}


def build_competition(client, dataset, name, participants, rounds):
    competition = create_competition(client, dataset, name=name, max_participants=50)
    ids = [
        register(client, competition, f"{name} {i}", [OPEN_BTC, CLOSE_BTC] * 5) for i in range(participants)
    ]
    client.post(f"/api/v1/competitions/{competition}/start")
    for _ in range(rounds):
        run_round(client, competition)
    return competition, ids[0]


def count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as context:
        response = client.get(url)
        content = b"".join(response.streaming_content) if response.streaming else response.content
    assert response.status_code == 200, url
    assert content, url
    return len(context.captured_queries)


def test_every_read_runs_the_same_few_queries_for_a_small_and_a_bigger_competition(
    client_with_key, anonymous, replay_market, django_assert_max_num_queries
):
    small = build_competition(client_with_key, replay_market, "Small", participants=2, rounds=2)
    big = build_competition(client_with_key, replay_market, "Big", participants=6, rounds=6)

    for path, bound in BOUNDS.items():
        counts = [count_queries(anonymous, path.format(c=c, p=p)) for c, p in (small, big)]
        assert counts[0] == counts[1], (path, counts)
        with django_assert_max_num_queries(bound, info=path):
            anonymous.get(path.format(c=big[0], p=big[1]))
