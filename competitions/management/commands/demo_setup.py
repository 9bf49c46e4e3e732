"""Prepare the embedded demo: an admin login and a demo competition (idempotent)."""

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from competitions.models import Competition
from competitions.services import (
    competition_create,
    competition_pause,
    competition_resume,
    competition_start,
    participant_register,
    participant_update,
)

DEMO_NAME = "Gauntlet demo: baselines on Binance history"
DEMO_USER = "admin"
DEMO_PASSWORD = "gauntlet"


# One model per provider whose key is in the environment joins the demo.
DEMO_MODELS = [
    ("ANTHROPIC_API_KEY", "anthropic", "claude-sonnet-4-5", "Claude Sonnet 4.5"),
    ("OPENAI_API_KEY", "openai", "gpt-4o-mini", "GPT-4o mini"),
    ("DEEPSEEK_API_KEY", "deepseek", "deepseek-chat", "DeepSeek V3"),
    ("QWEN_API_KEY", "qwen", "qwen-plus", "Qwen Plus"),
]
# The model `make demo` serves itself with DEMO_LOCAL_MODEL=1 (gauntlet.local_model).
SHIPPED_MODEL_NAME = "SmolLM2 135M (local)"
LOCAL_TIMEOUT_SECONDS = 120
# On two busy cores it reads the six-symbol prompt at ~35 tokens/s: minutes, not seconds.
SHIPPED_TIMEOUT_SECONDS = 300


class Command(BaseCommand):
    help = "Create the demo admin user and demo competition if they do not exist yet."

    def add_arguments(self, parser):
        parser.add_argument("--local-base-url", default="", help="the shipped local model's server (set by `demo`)")
        parser.add_argument("--local-model", default="", help="the model name that server answers to")

    def handle(self, *args, local_base_url="", local_model="", **options):
        if not settings.DEBUG:
            raise CommandError("demo_setup creates a known admin password; it only runs with DEBUG on")
        user_model = get_user_model()
        if not user_model.objects.filter(username=DEMO_USER).exists():
            user_model.objects.create_superuser(DEMO_USER, "admin@example.com", DEMO_PASSWORD)
        competition = Competition.objects.filter(name=DEMO_NAME).first()
        if competition is None:
            # Replay start/end are market times inside the shipped dataset (2024-09 .. 2026-03).
            start = datetime(2025, 9, 1, tzinfo=UTC)
            competition = competition_create(
                name=DEMO_NAME,
                description="Built-in baseline strategies on real Binance hourly candles.",
                start_time=start,
                end_time=start + timedelta(days=90),
                mode="replay",
                dataset="binance-1h",
                timeframe="1h",
                symbols=["BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT", "DOGE/USDT"],
            )
            for strategy in ("buy_and_hold", "momentum", "mean_reversion", "random", "flat"):
                participant_register(
                    competition_id=competition.pk, name=strategy.replace("_", " ").title(),
                    llm_provider="baseline", llm_model=strategy,
                )
        self._register_models(competition)
        if local_base_url:
            self._point_shipped_model(competition, local_base_url, local_model)
        if competition.status == Competition.Status.DRAFT:
            competition_start(competition_id=competition.pk)
            competition.refresh_from_db()
        self.stdout.write(f"Demo competition #{competition.pk}: {competition.name} ({competition.status})")
        self.stdout.write(f"Admin: /admin/  user {DEMO_USER} / password {DEMO_PASSWORD}")

    def _register_models(self, competition):
        """LLM participants for the providers configured here (keys stay in the environment)."""
        taken = set(competition.participants.values_list("name", flat=True))
        wanted = [
            (provider, model, name, {})
            for setting, provider, model, name in DEMO_MODELS
            if getattr(settings, setting, "")
        ]
        if settings.DEMO_LOCAL_BASE_URL:
            wanted.append(
                ("openai_compatible", settings.DEMO_LOCAL_MODEL, f"Local {settings.DEMO_LOCAL_MODEL}",
                 {"base_url": settings.DEMO_LOCAL_BASE_URL, "timeout_seconds": LOCAL_TIMEOUT_SECONDS})
            )
        for provider, model, name, config in wanted:
            if name not in taken and competition.participants.count() < competition.max_participants:
                participant_register(
                    competition_id=competition.pk, name=name, llm_provider=provider, llm_model=model,
                    llm_config=config,
                )

    def _point_shipped_model(self, competition, base_url, model):
        """Register the shipped model, or point it at this run's server: `demo` starts it on a
        free port each time. A running competition's participants are locked, so it pauses
        for the change."""
        config = {"base_url": base_url, "timeout_seconds": SHIPPED_TIMEOUT_SECONDS}
        participant = competition.participants.filter(name=SHIPPED_MODEL_NAME).first()
        if participant is None:
            if competition.participants.count() < competition.max_participants and not competition.is_finished:
                participant_register(
                    competition_id=competition.pk, name=SHIPPED_MODEL_NAME, llm_provider="openai_compatible",
                    llm_model=model, llm_config=config,
                )
            return
        if competition.is_finished or (participant.llm_config == config and participant.llm_model == model):
            return
        was_active = competition.status == Competition.Status.ACTIVE
        if was_active:
            competition_pause(competition_id=competition.pk)
        participant_update(participant_id=participant.pk, llm_model=model, llm_config=config)
        if was_active:
            competition_resume(competition_id=competition.pk)
