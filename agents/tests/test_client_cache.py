"""SDK clients are built once per process and shared by every round (agents.providers.llm.sdk_client)."""

import os

import httpx
import pytest

from agents.invoke import invoke_agent
from agents.prompt import build_context
from agents.providers import llm
from agents.tests.conftest import NOW, make_account, make_rules, make_snapshot
from agents.tests.test_providers import chat_completion

HOLD = '{"reasoning": "wait", "actions": []}'


@pytest.fixture(autouse=True)
def empty_cache():
    llm.sdk_clients_clear()
    yield
    llm.sdk_clients_clear()


@pytest.fixture
def context():
    rules = make_rules()
    return build_context(rules=rules, snapshot=make_snapshot(), account=make_account(rules), now=NOW)


@pytest.fixture
def built(monkeypatch):
    """Every SDK client the providers build, in order."""
    made = []
    original = llm.OpenAIChatAgent._build_client

    def counting(self):
        client = original(self)
        made.append(client)
        return client

    monkeypatch.setattr(llm.OpenAIChatAgent, "_build_client", counting)
    return made


def _round(context, *, api_key="sk-a", base_url="https://gw.test/v1"):
    return invoke_agent(
        provider="openai_compatible", model="m", config={"base_url": base_url}, api_key=api_key, context=context
    )


def test_two_rounds_reuse_one_client_and_its_connection_pool(http_mock, context, built):
    route = http_mock.post("https://gw.test/v1/chat/completions").mock(
        return_value=httpx.Response(200, json=chat_completion(HOLD))
    )
    assert _round(context).status == "success"
    assert _round(context).status == "success"
    assert route.call_count == 2
    assert len(built) == 1
    assert not built[0].is_closed()  # left open for the next round


def test_a_changed_key_or_base_url_gets_its_own_client(http_mock, context, built):
    http_mock.post("https://gw.test/v1/chat/completions").mock(return_value=httpx.Response(200, json=chat_completion(HOLD)))
    other = http_mock.post("https://other.test/v1/chat/completions").mock(
        return_value=httpx.Response(200, json=chat_completion(HOLD))
    )
    _round(context)
    _round(context, api_key="sk-b")
    _round(context, base_url="https://other.test/v1")
    _round(context, api_key="sk-b")
    assert len(built) == 3
    assert other.calls.last.request.headers["authorization"] == "Bearer sk-a"
    assert len({id(c) for c in built}) == 3


def test_threads_building_the_same_client_at_once_end_up_sharing_one():
    from concurrent.futures import ThreadPoolExecutor

    agent = llm.OpenAIChatAgent(provider="openai", model="gpt-4o", config={}, api_key="k")
    with ThreadPoolExecutor(max_workers=8) as pool:
        clients = list(pool.map(lambda _: agent.client(), range(16)))
    assert len({id(c) for c in clients}) == 1


def test_the_cache_key_holds_no_secret():
    llm.OpenAIChatAgent(provider="openai", model="gpt-4o", config={}, api_key="sk-very-secret").client()
    assert "sk-very-secret" not in repr(list(llm._clients))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_builds_its_own_clients():
    parent = llm.OpenAIChatAgent(provider="openai", model="gpt-4o", config={}, api_key="k").client()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report whether it got the parent's client, never run pytest's teardown
        try:
            child = llm.OpenAIChatAgent(provider="openai", model="gpt-4o", config={}, api_key="k").client()
            os.write(write, b"fresh" if child is not parent and len(llm._clients) == 1 else b"inherited")
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 16)
    os.waitpid(pid, 0)
    assert answer == b"fresh"
    assert llm.OpenAIChatAgent(provider="openai", model="gpt-4o", config={}, api_key="k").client() is parent
