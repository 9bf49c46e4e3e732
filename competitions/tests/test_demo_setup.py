"""demo_setup: the demo's local models, external (DEMO_LOCAL_BASE_URL) or shipped (DEMO_LOCAL_MODEL=1)."""

from io import StringIO

import pytest
from django.core.management import call_command

from competitions.management.commands.demo import wants_shipped_model
from competitions.management.commands.demo_setup import DEMO_NAME, SHIPPED_MODEL_NAME
from competitions.models import Competition

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_settings(settings):
    settings.DEBUG = True
    for key in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "DEEPSEEK_API_KEY", "QWEN_API_KEY", "DEMO_LOCAL_BASE_URL"):
        setattr(settings, key, "")
    settings.DEMO_LOCAL_MODEL = "llama3.1"
    return settings


def _setup(**options):
    call_command("demo_setup", stdout=StringIO(), **options)
    return Competition.objects.get(name=DEMO_NAME)


def test_the_shipped_model_joins_the_demo_and_follows_its_server_to_a_new_port(demo_settings):
    competition = _setup(local_base_url="http://127.0.0.1:40001/v1", local_model="smollm2-135m-instruct")
    local = competition.participants.get(name=SHIPPED_MODEL_NAME)
    assert (local.llm_provider, local.llm_model) == ("openai_compatible", "smollm2-135m-instruct")
    assert local.llm_config["base_url"] == "http://127.0.0.1:40001/v1"
    assert competition.status == "active" and local.account.cash == competition.initial_capital

    # the next `make demo` serves it on another free port: the same participant points there
    competition = _setup(local_base_url="http://127.0.0.1:40002/v1", local_model="smollm2-135m-instruct")
    local.refresh_from_db()
    assert local.llm_config["base_url"] == "http://127.0.0.1:40002/v1"
    assert competition.status == "active"
    assert competition.participants.filter(name=SHIPPED_MODEL_NAME).count() == 1


def test_without_the_shipped_server_only_the_baselines_play(demo_settings):
    competition = _setup()
    assert not competition.participants.filter(llm_provider="openai_compatible").exists()
    assert competition.participants.count() == 5


def test_an_external_local_server_is_still_registered_by_its_base_url(demo_settings):
    demo_settings.DEMO_LOCAL_BASE_URL = "http://127.0.0.1:11434/v1"
    competition = _setup()
    local = competition.participants.get(llm_provider="openai_compatible")
    assert (local.name, local.llm_model) == ("Local llama3.1", "llama3.1")
    assert local.llm_config["base_url"] == "http://127.0.0.1:11434/v1"
    assert not wants_shipped_model()


def test_demo_local_model_1_means_the_shipped_model_unless_a_base_url_is_given(demo_settings):
    demo_settings.DEMO_LOCAL_MODEL = "1"
    assert wants_shipped_model()
    demo_settings.DEMO_LOCAL_BASE_URL = "http://127.0.0.1:11434/v1"
    assert not wants_shipped_model()
