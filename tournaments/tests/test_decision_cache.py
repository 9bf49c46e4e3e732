"""Decision cache: keyed by what decides an answer; a tournament re-run from its cache makes
no model request and reproduces every fill and equity mark; read_only misses are errors."""

import itertools
import json
from decimal import Decimal

import httpx
import pytest
import respx

from agents import cache as decision_cache
from agents.models import DecisionCacheEntry, Invocation
from agents.tests.conftest import HTTPX2Mocker  # noqa: F401  (registers respx's httpx2 mocker)
from tournaments import runs, selectors, services
from tournaments.models import TournamentRun
from tournaments.tests.conftest import OPEN_BTC, START, scripted_lineup, tournament_fields
from trading.models import EquitySnapshot, Fill

pytestmark = pytest.mark.django_db(transaction=True)

URL = "http://model.test/v1/chat/completions"
CLOSE_BTC = {"reasoning": "take profit", "actions": [{"action": "close", "symbol": "BTC/USDT"}]}
HOLD = {"reasoning": "wait", "actions": [{"action": "hold"}]}
MODEL_ENTRY = {"name": "Model", "llm_provider": "openai_compatible", "llm_model": "local-7b",
               "llm_config": {"base_url": "http://model.test/v1", "temperature": 0.7,
                              "pricing": {"input_per_mtok": "1", "output_per_mtok": "2"}},
               "api_key": "sk-local"}


def _completion(decision: dict) -> httpx.Response:
    return httpx.Response(200, json={
        "id": "c", "object": "chat.completion", "created": 1, "model": "local-7b",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": json.dumps(decision)}}],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 50, "total_tokens": 1050},
    })


def _model_answers():
    """Answers that depend on how many calls came before: asked again, the model would differ."""
    counter = itertools.count()
    return lambda request: _completion([OPEN_BTC, HOLD, CLOSE_BTC][next(counter) % 3])


def _run_all(tournament_id: int) -> None:
    while (run := runs.run_claim(tournament_id=tournament_id, owner="test")) is not None:
        runs.run_execute(run_id=run.pk, owner="test")


def _fingerprint(tournament_id: int) -> dict:
    """Every fill and equity mark of every run, by (window, instance) and participant name."""
    prints = {}
    for run in TournamentRun.objects.filter(tournament_id=tournament_id).select_related("window"):
        account = {"account__participant__competition_id": run.competition_id}
        fills = Fill.objects.filter(**account).order_by("market_time", "id").values_list(
            "account__participant__name", "market_time", "symbol", "side", "quantity", "price", "fee", "realised_pnl")
        marks = EquitySnapshot.objects.filter(**account).order_by("market_time", "id").values_list(
            "account__participant__name", "market_time", "equity", "cash")
        prints[(run.window.index, run.instance)] = {"fills": list(fills), "equity": list(marks),
                                                    "result": _market_result(run.result)}
    return prints


# What an answer from the cache legitimately changes: no model call, so no latency and no cost.
CALL_FIELDS = {"latency_seconds_sum", "latency_samples", "cost_usd", "cost_adjusted_return_pct"}


def _market_result(result: dict) -> dict:
    participants = [
        {**p, "statistics": {k: v for k, v in (p.get("statistics") or {}).items() if k not in CALL_FIELDS}}
        for p in result.get("participants", [])
    ]
    return {**result, "participants": participants}


def _fields(**overrides):
    return tournament_fields(rules={}, entries=scripted_lineup() + [MODEL_ENTRY], **overrides)


def test_the_key_changes_with_what_decides_an_answer_and_only_with_that():
    base = {"provider": "openai", "model": "gpt", "config": {"temperature": 0.2, "timeout_seconds": 30},
            "system_prompt": "s", "user_prompt": "u", "seed": 1}
    key = decision_cache.decision_key(**base)
    assert decision_cache.decision_key(**{**base, "config": {"temperature": 0.2, "timeout_seconds": 99}}) == key
    for change in ({"config": {"temperature": 0.3}}, {"user_prompt": "u2"}, {"system_prompt": "s2"},
                   {"seed": 2}, {"model": "gpt-2"}, {"provider": "deepseek"}):
        assert decision_cache.decision_key(**{**base, **change}) != key, change


def test_a_rounds_lookups_are_one_statement_and_each_question_gets_its_own_answer(market):
    """Hit, read_write miss, read_only miss and cache off, asked together: one SELECT."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from types import SimpleNamespace

    from agents.context import AgentContext

    def question(prompt, mode):
        config = {"decision_cache": mode} if mode else {}
        context = AgentContext(rules=SimpleNamespace(seed=3), snapshot=None, account=None, now=START,
                               system_prompt="system", user_prompt=prompt)
        return decision_cache.Question("openai_compatible", "local-7b", config, context)

    hit = question("seen", "read_only")
    DecisionCacheEntry.objects.create(
        key=decision_cache.context_key(provider=hit.provider, model=hit.model, config=hit.config, context=hit.context),
        provider=hit.provider, model=hit.model, raw_text='{"reasoning": "x", "actions": []}', input_tokens=7,
    )
    questions = [hit, question("new", "read_write"), question("new", "read_only"), question("seen", None),
                 question("seen", "read_write")]
    with CaptureQueriesContext(connection) as queries:
        answers = decision_cache.recorded_answers(questions)
    assert len(queries) == 1
    assert answers[0].cached and answers[0].input_tokens == 7
    assert answers[1] is None  # read_write miss: the model is asked
    assert answers[2].status == "error" and "read_only" in answers[2].error
    assert answers[3] is None  # cache off: no key, no lookup of it
    assert answers[4].cached  # the same question under read_write: the same key, found


def test_a_rerun_from_the_cache_calls_no_model_and_reproduces_every_fill_and_mark(market):
    with respx.mock(using="httpx2", assert_all_called=False) as router:
        route = router.post(URL).mock(side_effect=_model_answers())
        first = services.tournament_create(**_fields())
        services.tournament_start(tournament_id=first.pk, enqueue=False)
        _run_all(first.pk)
        calls = route.call_count
        # 2 windows x 2 instances x 4 agent rounds, each asked once and recorded once
        assert calls == 16 and DecisionCacheEntry.objects.count() == 16
        assert Fill.objects.filter(account__participant__name="Model").exists()
        # the instance seed went out as the sampling seed
        seeds = {json.loads(call.request.content)["seed"] for call in route.calls}
        assert seeds == {7, 8}

        again = services.tournament_create(**_fields(cache_mode="read_only"))
        services.tournament_start(tournament_id=again.pk, enqueue=False)
        _run_all(again.pk)
        assert route.call_count == calls  # not one request

    assert _fingerprint(again.pk) == _fingerprint(first.pk)
    replayed = Invocation.objects.filter(round__competition__tournament_run__tournament=again, provider="openai_compatible")
    assert replayed.count() == 16 and all(i.cached and i.cost_usd == 0 for i in replayed)
    assert {i.input_tokens for i in replayed} == {1000}  # the recorded tokens, at no cost
    assert selectors.tournament_progress(again.pk).cache_hits == 16
    assert Decimal(selectors.tournament_progress(again.pk).llm_cost_usd) == 0
    assert Decimal(selectors.tournament_progress(first.pk).llm_cost_usd) > 0


def test_read_only_answers_a_miss_with_an_error_invocation_without_calling_the_model(market):
    with respx.mock(using="httpx2", assert_all_called=False) as router:
        route = router.post(URL).mock(side_effect=_model_answers())
        tournament = services.tournament_create(**_fields(cache_mode="read_only", instances=1, windows_spec={
            "start": START.isoformat(), "count": 1, "length_minutes": 120}))
        services.tournament_start(tournament_id=tournament.pk, enqueue=False)
        _run_all(tournament.pk)
    assert route.call_count == 0
    misses = Invocation.objects.filter(provider="openai_compatible")
    assert misses.count() == 2
    assert all(i.status == "error" and "cache miss" in i.error and not i.cached for i in misses)


def test_cache_off_calls_the_model_every_time_and_records_nothing(market):
    with respx.mock(using="httpx2", assert_all_called=False) as router:
        route = router.post(URL).mock(side_effect=_model_answers())
        for _ in range(2):
            tournament = services.tournament_create(**_fields(cache_mode="off", instances=1, windows_spec={
                "start": START.isoformat(), "count": 1, "length_minutes": 120}))
            services.tournament_start(tournament_id=tournament.pk, enqueue=False)
            _run_all(tournament.pk)
    assert route.call_count == 4
    assert not DecisionCacheEntry.objects.exists()
    assert not Invocation.objects.filter(cached=True).exists()


def test_a_bundle_imported_into_an_empty_cache_replays_the_tournament_without_a_model(market):
    from tournaments import bundle

    with respx.mock(using="httpx2", assert_all_called=False) as router:
        route = router.post(URL).mock(side_effect=_model_answers())
        first = services.tournament_create(**_fields(instances=1), in_sample="apart")
        services.tournament_start(tournament_id=first.pk, enqueue=False)
        _run_all(first.pk)
        exported = bundle.bundle_parse(bundle.bundle_lines(bundle.bundle_export(tournament_id=first.pk)))
        assert exported["tournament"]["in_sample"] == "apart"  # how its results are read travels too
        assert len(exported["cache"]) == route.call_count == 8
        DecisionCacheEntry.objects.all().delete()  # "elsewhere": nothing recorded but the bundle

        copy, warnings = bundle.bundle_import(bundle=exported, cache_mode="read_only",
                                              api_keys={"Model": "sk-local"})
        assert warnings == [] and copy.in_sample == "apart"
        services.tournament_start(tournament_id=copy.pk, enqueue=False)
        _run_all(copy.pk)
        assert route.call_count == 8
    assert _fingerprint(copy.pk) == _fingerprint(first.pk)


def test_adding_a_model_to_a_played_tournament_pays_only_for_that_models_calls(market):
    newcomer = {**MODEL_ENTRY, "name": "Newcomer", "llm_model": "local-13b"}
    with respx.mock(using="httpx2", assert_all_called=False) as router:
        route = router.post(URL).mock(side_effect=_model_answers())
        first = services.tournament_create(**_fields())
        services.tournament_start(tournament_id=first.pk, enqueue=False)
        _run_all(first.pk)
        assert route.call_count == 16

        # the same tournament (name, rules, windows, seed) with one more entry in its lineup
        wider = services.tournament_create(**tournament_fields(rules={}, entries=scripted_lineup() + [MODEL_ENTRY, newcomer]))
        services.tournament_start(tournament_id=wider.pk, enqueue=False)
        _run_all(wider.pk)
        asked = [json.loads(call.request.content)["model"] for call in route.calls[16:]]
    assert asked == ["local-13b"] * 16
    assert selectors.tournament_progress(wider.pk).cache_hits == 16

    def model_trades(tournament_id: int) -> dict:  # the cached model's fills and marks, run by run
        return {key: [row for row in print_["fills"] + print_["equity"] if row[0] == "Model"]
                for key, print_ in _fingerprint(tournament_id).items()}

    assert model_trades(wider.pk) == model_trades(first.pk)


def test_cache_lookups_run_on_the_rounds_own_thread_never_on_the_model_threads(market, monkeypatch):
    """A lookup on an agent thread would open a connection of its own and could meet a lock
    another holds (SQLite's shared cache answers "table is locked" at once): a hit would turn
    into a miss, a paid call and, in read_only, an error. The round looks up itself."""
    import threading

    threads = []
    read = decision_cache._entries_read

    def spying_read(keys):
        threads.append(threading.current_thread())
        return read(keys)

    monkeypatch.setattr(decision_cache, "_entries_read", spying_read)
    with respx.mock(using="httpx2", assert_all_called=False) as router:
        route = router.post(URL).mock(side_effect=_model_answers())
        for _ in range(2):  # the second time every answer is a hit
            tournament = services.tournament_create(**_fields(instances=1, windows_spec={
                "start": START.isoformat(), "count": 1, "length_minutes": 120}))
            services.tournament_start(tournament_id=tournament.pk, enqueue=False)
            _run_all(tournament.pk)
    assert route.call_count == 2
    assert len(threads) == 4 and set(threads) == {threading.current_thread()}
    hits = Invocation.objects.filter(round__competition__tournament_run__tournament=tournament, cached=True)
    assert hits.count() == 2


def test_a_read_only_rerun_asks_the_cache_once_a_round_for_all_its_agents(market, monkeypatch):
    """Agents answered only from the cache run in replay batches, on the round's thread:
    their lookups, like the models', are one statement a round, not one an agent."""
    from competitions.models import Round

    second = {**MODEL_ENTRY, "name": "Model 2", "llm_model": "local-13b"}
    lineup = scripted_lineup() + [MODEL_ENTRY, second]
    with respx.mock(using="httpx2", assert_all_called=False) as router:
        router.post(URL).mock(side_effect=_model_answers())
        first = services.tournament_create(**tournament_fields(rules={}, entries=lineup))
        services.tournament_start(tournament_id=first.pk, enqueue=False)
        _run_all(first.pk)
        lookups = []
        read = decision_cache._entries_read
        monkeypatch.setattr(decision_cache, "_entries_read", lambda keys: lookups.append(len(keys)) or read(keys))
        again = services.tournament_create(**tournament_fields(rules={}, entries=lineup, cache_mode="read_only"))
        services.tournament_start(tournament_id=again.pk, enqueue=False)
        _run_all(again.pk)
    asked = Round.objects.filter(competition__tournament_run__tournament=again, invocations__isnull=False).distinct()
    assert len(lookups) == asked.count() > 0
    assert set(lookups) == {2}  # both models (the agents whose cache is on), in one statement
    replayed = Invocation.objects.filter(round__competition__tournament_run__tournament=again,
                                         provider="openai_compatible")
    assert replayed.count() > 0 and all(i.cached for i in replayed)


def test_a_cached_rerun_on_a_worker_thread_keeps_its_connection(market):
    """Celery's threads pool and the in-process runner run rounds off the main thread; a
    read_only re-run answers there, inside the batch's transaction, and must not lose the
    connection that holds it."""
    import threading

    from django.db import connection

    with respx.mock(using="httpx2", assert_all_called=False) as router:
        route = router.post(URL).mock(side_effect=_model_answers())
        # a baseline and a model: answered in process on a re-run, its rounds run in batches
        lineup = [{"name": "Hold", "llm_provider": "baseline", "llm_model": "buy_and_hold"}, MODEL_ENTRY]
        fields = tournament_fields(rules={}, entries=lineup, instances=1)
        first = services.tournament_create(**fields)
        services.tournament_start(tournament_id=first.pk, enqueue=False)
        _run_all(first.pk)
        again = services.tournament_create(**{**fields, "cache_mode": "read_only"})
        services.tournament_start(tournament_id=again.pk, enqueue=False)
        failures = []

        def work():
            try:
                _run_all(again.pk)
            except Exception as exc:  # noqa: BLE001  (reported to the test's thread)
                failures.append(exc)
            finally:
                connection.close()

        worker = threading.Thread(target=work)
        worker.start()
        worker.join(120)
        assert route.call_count == 8
    assert failures == []
    assert _fingerprint(again.pk) == _fingerprint(first.pk)
