"""A real model plays replay rounds: SmolLM2-135M-Instruct behind llama.cpp's OpenAI-compatible
server (the `local_model_server` fixture, from .venv-llm), registered like any user's local
model, as `openai_compatible` with its base_url and otherwise default settings (a local
server's default timeout is 300 s, without retrying a timeout: agents.providers.base).

Every other round test answers with scripted or mocked models; this one proves that the
prompt, the provider's request (response_format), the parser and the round fit a model that
really generates text. Its numbers (seconds per decision, share of valid decisions) land in
artifacts/real_model.json and in the test output.
"""

import json
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from agents.models import Invocation
from competitions import services
from competitions.models import Round
from competitions.tests.factories import START, CompetitionFactory
from trading.services import account_check_invariant

pytestmark = [pytest.mark.slow, pytest.mark.real_model, pytest.mark.django_db(transaction=True)]

ROUNDS = 4
REPORT = Path(settings.BASE_DIR) / "artifacts" / "real_model.json"


def test_a_small_local_model_answers_most_rounds_with_a_valid_decision(
    replay_market, local_model_server, capsys
):
    competition = CompetitionFactory(
        dataset=replay_market, symbols=["BTC/USDT", "ETH/USDT"], end_time=START + timedelta(hours=ROUNDS + 2)
    )
    participant = services.participant_register(
        competition_id=competition.pk, name="SmolLM2", llm_provider="openai_compatible",
        llm_model=local_model_server.model,
        llm_config={"base_url": local_model_server.base_url},  # default settings: only where the server is
    )

    call_command("run_competition", str(competition.pk), "--rounds", str(ROUNDS), stdout=StringIO())

    assert list(Round.objects.filter(competition=competition).values_list("status", flat=True)) == [
        "completed"
    ] * ROUNDS
    invocations = list(Invocation.objects.filter(participant=participant).order_by("round__number"))
    assert len(invocations) == ROUNDS
    valid = [i for i in invocations if i.status == Invocation.Status.SUCCESS]
    report = {
        "model": local_model_server.model,
        "server_start_seconds": round(local_model_server.started_seconds, 2),
        "rounds": ROUNDS,
        "valid_decisions": len(valid),
        "valid_rate": len(valid) / ROUNDS,
        "seconds_per_decision": [i.latency_ms / 1000 for i in invocations],
        "mean_seconds_per_decision": sum(i.latency_ms for i in invocations) / 1000 / ROUNDS,
        "input_tokens": [i.input_tokens for i in invocations],
        "output_tokens": [i.output_tokens for i in invocations],
        "statuses": [i.status for i in invocations],
        "retries": [i.retries for i in invocations],
        "errors": [i.error[:300] for i in invocations if i.error],
        "decisions": [i.parsed_decision for i in valid],
    }
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=2, default=str))
    with capsys.disabled():
        print(
            f"\nreal model {report['model']}: {len(valid)}/{ROUNDS} valid decisions, "
            f"{report['mean_seconds_per_decision']:.1f} s per decision "
            f"({', '.join(f'{s:.1f}' for s in report['seconds_per_decision'])}), "
            f"prompt {max(report['input_tokens'])} tokens; details in {REPORT.relative_to(settings.BASE_DIR)}"
        )

    # the server really answered: it counted the prompt it read
    assert all(i.input_tokens > 1000 for i in valid), report
    assert len(valid) * 2 >= ROUNDS, report
    # whatever the model decided, the money adds up
    account_check_invariant(account=participant.account)
