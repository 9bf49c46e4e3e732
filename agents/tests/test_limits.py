"""Provider limits shared by every worker (agents.limits): buckets, slots, Retry-After pauses."""

import os
import threading
import time

import httpx
import pytest

from agents import limits
from agents.invoke import invoke_agent
from agents.prompt import build_context
from agents.tests.conftest import NOW, make_account, make_rules, make_snapshot
from agents.tests.test_providers import chat_completion

HOLD = '{"reasoning": "wait", "actions": []}'
TEST_REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/3"


class FakeClock:
    """limits.clock and limits.sleep: a sleep moves time on at once."""

    def __init__(self):
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_clock(monkeypatch, settings):
    settings.PROVIDER_LIMITS_REDIS_URL = ""
    settings.REDIS_URL = ""
    clock = FakeClock()
    monkeypatch.setattr(limits, "clock", clock)
    monkeypatch.setattr(limits, "sleep", clock.sleep)
    limits.limits_reset()
    return clock


@pytest.fixture
def context():
    rules = make_rules()
    return build_context(rules=rules, snapshot=make_snapshot(), account=make_account(rules), now=NOW)


def _take(config, *, tokens=0, provider="openai_compatible", base_url="https://gw.test/v1"):
    meter = limits.Meter()
    with limits.slot(provider=provider, base_url=base_url, config=config, tokens=tokens, meter=meter) as held:
        pass
    return meter, held


def test_limits_come_from_settings_and_llm_config_overrides_them(settings):
    settings.PROVIDER_LIMITS = {
        "default": {"max_concurrency": 8},
        "openai": {"requests_per_minute": 500, "tokens_per_minute": 30_000},
    }
    assert limits.limits_for("openai", {}) == limits.Limits(500, 30_000, 8)
    assert limits.limits_for("openai", {"requests_per_minute": 60, "max_concurrency": None}) == limits.Limits(
        60, 30_000, None
    )
    assert limits.limits_for("qwen", {}) == limits.Limits(None, None, 8)


def test_a_full_minute_of_requests_goes_at_once_then_one_per_refill(fake_clock):
    config = {"requests_per_minute": 60, "max_concurrency": None}
    waits = [_take(config)[0].waited_ms for _ in range(60)]
    assert waits == [0] * 60
    assert _take(config)[0].waited_ms == 1000  # 60 a minute: the next one a second later
    fake_clock.now += 3  # three more refilled meanwhile
    assert [_take(config)[0].waited_ms for _ in range(4)] == [0, 0, 0, 1000]


def test_tokens_per_minute_admit_on_the_reservation_and_settle_on_the_usage(fake_clock):
    config = {"tokens_per_minute": 1000, "max_concurrency": None}
    meter, held = _take(config, tokens=600)
    assert meter.waited_ms == 0
    held.used(100)  # the server used 100 of the 600 reserved: 500 go back
    assert _take(config, tokens=800)[0].waited_ms == 0
    # 100 left; 600 more need 500 refilled at 1000/min: 30 s
    assert _take(config, tokens=600)[0].waited_ms == 30_000


def test_a_call_bigger_than_the_bucket_waits_for_a_full_bucket_not_forever(fake_clock):
    meter, _ = _take({"tokens_per_minute": 1000}, tokens=5000)
    assert meter.waited_ms == 0
    assert _take({"tokens_per_minute": 1000}, tokens=5000)[0].waited_ms == 60_000


def test_the_concurrency_cap_holds_calls_until_a_slot_is_released(fake_clock):
    backend = limits.backend()
    capped = limits.Limits(max_concurrency=2)
    assert backend.try_acquire("k", capped, 0, "a") == 0
    assert backend.try_acquire("k", capped, 0, "b") == 0
    assert backend.try_acquire("k", capped, 0, "c") == limits.POLL_SECONDS
    backend.release("k", "a")
    assert backend.try_acquire("k", capped, 0, "c") == 0


def test_a_dead_workers_slot_frees_itself_after_its_lease(fake_clock):
    backend = limits.backend()
    capped = limits.Limits(max_concurrency=1, lease_seconds=30)
    assert backend.try_acquire("k", capped, 0, "killed") == 0
    assert backend.try_acquire("k", capped, 0, "next") > 0
    fake_clock.now += 31
    assert backend.try_acquire("k", capped, 0, "next") == 0


def test_a_wait_beyond_the_allowed_one_fails_the_call_instead_of_holding_the_round(fake_clock):
    config = {"requests_per_minute": 1, "max_limit_wait_seconds": 5}
    _take(config)
    with pytest.raises(limits.LimitWaitExceeded):
        _take(config)


def test_retry_after_pauses_the_endpoint_and_the_wait_is_recorded(fake_clock, http_mock, context, no_backoff):
    route = http_mock.post("https://gw.test/v1/chat/completions").mock(
        side_effect=[
            httpx.Response(429, headers={"retry-after": "7"}, json={"error": {"message": "slow down"}}),
            httpx.Response(200, json=chat_completion(HOLD)),
        ]
    )
    config = {"base_url": "https://gw.test/v1"}
    outcome = invoke_agent(provider="openai_compatible", model="m", config=config, api_key=None, context=context)
    assert route.call_count == 2
    assert outcome.status == "success"
    assert no_backoff == [7.0]  # the retry's own wait (patched: no time passed) ...
    assert outcome.response.limit_wait_ms == 7000  # ... so the pause made it wait the 7 s
    # another agent on the same endpoint is not held any more; one on another endpoint never was
    assert _take({})[0].waited_ms == 0


@pytest.mark.django_db
def test_an_invocation_row_keeps_the_wait(fake_clock, http_mock, context):
    from agents.invoke import AgentOutcome
    from agents.services import InvocationAnswer, _invocation_row

    http_mock.post("https://gw.test/v1/chat/completions").mock(return_value=httpx.Response(200, json=chat_completion(HOLD)))
    config = {"base_url": "https://gw.test/v1", "requests_per_minute": 1}
    invoke_agent(provider="openai_compatible", model="m", config=config, api_key=None, context=context)
    outcome: AgentOutcome = invoke_agent(
        provider="openai_compatible", model="m", config=config, api_key=None, context=context
    )
    assert outcome.response.limit_wait_ms == 60_000
    row = _invocation_row(InvocationAnswer(1, 1, None, "openai_compatible", "m", context, outcome))
    assert row.limit_wait_ms == 60_000


# ---------------------------------------------------------------------------------------------
# Redis: the buckets every worker shares


@pytest.fixture
def redis_limits(settings):
    import redis

    try:
        redis.Redis.from_url(TEST_REDIS_URL).ping()
    except Exception as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs Redis at {TEST_REDIS_URL}: {exc}")
        pytest.skip(f"no Redis at {TEST_REDIS_URL}")
    settings.PROVIDER_LIMITS_REDIS_URL = TEST_REDIS_URL
    limits.limits_reset()
    yield limits.backend()
    limits.limits_reset()


def test_redis_buckets_are_shared_by_separate_connections(redis_limits):
    assert isinstance(redis_limits, limits.RedisBackend)
    other_worker = limits.RedisBackend(TEST_REDIS_URL)
    three = limits.Limits(requests_per_minute=3)
    assert [redis_limits.try_acquire("k", three, 0, "a") for _ in range(2)] == [0, 0]
    assert other_worker.try_acquire("k", three, 0, "b") == 0
    wait = redis_limits.try_acquire("k", three, 0, "c")
    assert 19 < wait <= 20  # 3 a minute: the next one ~20 s after the bucket emptied
    assert other_worker.try_acquire("other-endpoint", three, 0, "d") == 0


def test_redis_tokens_and_slots(redis_limits):
    other_worker = limits.RedisBackend(TEST_REDIS_URL)
    tokens = limits.Limits(tokens_per_minute=1000, max_concurrency=1)
    assert redis_limits.try_acquire("k", tokens, 900, "a") == 0
    assert other_worker.try_acquire("k", tokens, 10, "b") == limits.POLL_SECONDS  # slot taken
    redis_limits.release("k", "a")
    redis_limits.settle("k", tokens, 500)
    assert other_worker.try_acquire("k", tokens, 600, "b") == 0  # 100 left + 500 given back
    other_worker.release("k", "b")
    assert 5.9 < redis_limits.try_acquire("k", tokens, 100, "c") <= 6.0


def test_a_429_with_retry_after_on_one_worker_slows_the_other(redis_limits, http_mock, context, monkeypatch):
    http_mock.post("https://gw.test/v1/chat/completions").mock(
        side_effect=[
            httpx.Response(429, headers={"retry-after-ms": "400"}, json={"error": {"message": "slow down"}}),
            httpx.Response(200, json=chat_completion(HOLD)),
        ]
    )
    config = {"base_url": "https://gw.test/v1", "max_retries": 0}
    outcomes = {}

    def worker(name):
        outcomes[name] = invoke_agent(
            provider="openai_compatible", model="m", config=config, api_key=None, context=context
        )

    first = threading.Thread(target=worker, args=("refused",))
    first.start()
    first.join()
    assert outcomes["refused"].status == "error" and "429" in outcomes["refused"].error
    started = time.monotonic()
    second = threading.Thread(target=worker, args=("other",))
    second.start()
    second.join()
    assert outcomes["other"].status == "success"
    assert outcomes["other"].response.limit_wait_ms >= 250
    assert time.monotonic() - started >= 0.25
    # the pause sits in Redis, where every worker process reads it
    state = [k for k in redis_limits.client.scan_iter(match=f"{limits.REDIS_PREFIX}*:state")]
    assert any(redis_limits.client.hget(k, "paused_until") for k in state)
