"""docs/api.md's curl walkthrough, run command by command against the app.

The commands are read out of the document itself, so the published examples and this test
cannot drift apart. Only the dataset changes (the conftest's small one instead of the
shipped Binance files), and the Anthropic API is answered by respx at the SDK's transport
(the agents tests' httpx2 bridge): no network.
"""

# ruff: noqa: F811 -- pytest fixtures imported from test_api_fixtures are test arguments

import json
import re
import shlex
from pathlib import Path

import httpx
import pytest
import respx

from agents.tests.conftest import HTTPX2Mocker  # noqa: F401 -- registers respx's "httpx2" mocker
from competitions.models import Competition
from competitions.tests.test_api_fixtures import WRITE_KEY, anonymous, api_settings, instruments  # noqa: F401
from competitions.tests.test_api_rounds import in_process_runner  # noqa: F401 -- fixture

pytestmark = pytest.mark.django_db(transaction=True)

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"

CLAUDE_ANSWER = {
    "id": "msg_test",
    "type": "message",
    "role": "assistant",
    "model": "claude-haiku-4-5",
    "content": [
        {
            "type": "tool_use",
            "id": "toolu_test",
            "name": "submit_decision",
            "input": {
                "reasoning": "BTC is trending up on the hourly chart",
                "actions": [
                    {
                        "action": "open",
                        "symbol": "BTC/USDT",
                        "side": "long",
                        "quantity": 0.01,
                        "notional_usd": None,
                        "leverage": 2,
                        "stop_loss": None,
                        "take_profit": None,
                        "invalidation": None,
                        "confidence": 0.6,
                    }
                ],
            },
        }
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {"input_tokens": 5200, "output_tokens": 180},
}


def curl_commands(text: str) -> list[dict]:
    """Each curl command of the ```sh blocks: method, path under $GAUNTLET, body, key header."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL):
        joined = block.replace("\\\n", " ")
        # a command runs from "curl" to the next line that starts another command
        for chunk in re.split(r"\n(?=\S)", joined):
            line = chunk.strip()
            if not line.startswith("curl "):
                continue
            words = shlex.split(line, posix=True)
            method, body, headers, url = "GET", None, {}, None
            index = 1
            while index < len(words):
                word = words[index]
                if word == "-X":
                    method, index = words[index + 1], index + 1
                elif word == "-d":
                    body, index = json.loads(words[index + 1]), index + 1
                elif word == "-H":
                    name, _, value = words[index + 1].partition(":")
                    headers[name.strip()] = value.strip()
                    index += 1
                elif word == "-o":
                    index += 1
                elif not word.startswith("-"):
                    url = word
                index += 1
            commands.append({"method": method, "url": url, "body": body, "headers": headers})
    return commands


def test_the_walkthrough_covers_the_published_sequence():
    commands = curl_commands(DOC.read_text())
    steps = [(c["method"], re.sub(r"\?.*", "", c["url"])) for c in commands]

    assert ("POST", "$GAUNTLET/competitions") in steps
    assert ("POST", "$GAUNTLET/participants/competitions/$COMPETITION/participants") in steps
    assert ("POST", "$GAUNTLET/competitions/$COMPETITION/start") in steps
    assert ("POST", "$GAUNTLET/competitions/$COMPETITION/rounds") in steps
    assert ("GET", "$GAUNTLET/leaderboard/competitions/$COMPETITION/leaderboard") in steps
    assert ("GET", "$GAUNTLET/competitions/$COMPETITION/export") in steps
    create = commands[0]["body"]
    for field in (
        "initial_capital",
        "max_leverage",
        "max_position_size_pct",
        "allowed_asset_classes",
        "margin_requirement_pct",
        "maintenance_margin_pct",
        "max_participants",
        "market_hours_only",
        "invocation_interval_minutes",
        "start_time",
        "end_time",
    ):
        assert field in create, field
    for command in commands:
        if command["method"] != "GET":
            assert command["headers"].get("X-API-Key") == "$KEY", command


def test_the_curl_walkthrough_runs_a_competition_from_creation_to_export(anonymous, replay_market, settings):
    settings.ANTHROPIC_API_KEY = ""
    variables = {"$KEY": WRITE_KEY}
    responses = []
    with respx.mock(using="httpx2", assert_all_called=True) as network:
        anthropic = network.post("https://api.anthropic.com/v1/messages").mock(
            return_value=httpx.Response(200, json=CLAUDE_ANSWER)
        )
        for command in curl_commands(DOC.read_text()):
            url = command["url"].replace("$GAUNTLET", "/api/v1")
            for name in sorted(variables, key=len, reverse=True):
                url = url.replace(name, str(variables[name]))
            body = command["body"]
            if body and body.get("dataset") == "binance-1h":
                body = {**body, "dataset": replay_market}
            headers = {
                f"HTTP_{name.upper().replace('-', '_')}": value.replace("$KEY", WRITE_KEY)
                for name, value in command["headers"].items()
                if name != "Content-Type"
            }
            response = anonymous.generic(
                command["method"],
                url,
                json.dumps(body) if body is not None else "",
                content_type="application/json",
                **headers,
            )
            content = b"".join(response.streaming_content) if response.streaming else response.content
            assert 200 <= response.status_code < 300, (command, response.status_code, content[:500])
            responses.append((url, response, content))
            data = json.loads(content) if response["Content-Type"] == "application/json" else None
            if command["method"] == "POST" and url == "/api/v1/competitions":
                variables["$COMPETITION"] = data["id"]
            elif url.endswith("/participants") and command["method"] == "POST":
                variables[f"${data['name'].upper()}"] = data["id"]
                assert data["has_api_key"] is (data["name"] == "Claude")
                assert "api_key" not in data

    by_url = {url: (response, content) for url, response, content in responses}
    competition = Competition.objects.get(pk=variables["$COMPETITION"])
    assert competition.status == "completed"
    assert anthropic.call_count == 1
    sent = json.loads(anthropic.calls[0].request.content)
    assert anthropic.calls[0].request.headers["authorization"] == "Bearer sk-ant-your-key"
    assert sent["model"] == "claude-haiku-4-5"

    leaderboard = json.loads(
        by_url[f"/api/v1/leaderboard/competitions/{competition.pk}/leaderboard?metric=sharpe"][1]
    )
    assert {row["name"] for row in leaderboard["results"]} == {"Claude", "Momentum"}
    trades = json.loads(by_url[f"/api/v1/participants/{variables['$CLAUDE']}/trades"][1])
    assert trades["results"][-1]["reasoning"] == "BTC is trending up on the hourly chart"
    assert trades["results"][-1]["quantity"] == "0.01"
    export = by_url[f"/api/v1/competitions/{competition.pk}/export?format=csv&what=trades"][1].decode()
    assert export.splitlines()[0].startswith("fill_id,participant_id,participant,market_time")
    assert "BTC is trending up on the hourly chart" in export
    equity = json.loads(by_url[f"/api/v1/competitions/{competition.pk}/export?format=json&what=equity"][1])
    assert {row["participant"] for row in equity} == {"Claude", "Momentum"}
