"""One row per agent per round: what the agent saw, said, cost, and what became of it."""

from django.db import models
from django.db.models import F, Q

from agents.providers.structured import MODES as STRUCTURED_OUTPUT_MODES


class InvocationStatus(models.TextChoices):
    SUCCESS = "success", "Success"
    INVALID_RESPONSE = "invalid_response", "Invalid response"
    ERROR = "error", "Error"
    TIMEOUT = "timeout", "Timeout"


class Invocation(models.Model):
    Status = InvocationStatus

    participant = models.ForeignKey(
        "competitions.Participant", on_delete=models.CASCADE, related_name="invocations"
    )
    round = models.ForeignKey("competitions.Round", on_delete=models.CASCADE, related_name="invocations")
    snapshot = models.ForeignKey(
        "marketdata.MarketSnapshotRecord",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="invocations",
    )
    # Provider and model as called, kept even if the participant is edited later.
    provider = models.CharField(max_length=32)
    model = models.CharField(max_length=200)
    prompt_version = models.CharField(max_length=40)
    system_prompt = models.TextField()
    user_prompt = models.TextField()
    raw_response = models.TextField(blank=True, default="")
    # A reasoning model's thinking (reasoning_content or <think>), apart from its answer.
    reasoning_text = models.TextField(blank=True, default="")
    # How the decision schema was enforced on this call ("" for built-in agents).
    structured_output_mode = models.CharField(max_length=24, blank=True, default="")
    escaped_characters = models.PositiveIntegerField(
        default=0,
        help_text="Characters no database stores (NUL, lone surrogates) kept as the visible escape ⧵uXXXX",
    )
    parsed_decision = models.JSONField(default=dict, blank=True)
    # [{"index": 0, "action": {...}, "status": "filled"|"rejected", "order_id": ..., "code": ..., "reason": ...}]
    action_outcomes = models.JSONField(default=list, blank=True)
    # Counted from action_outcomes (agents.services.action_counts) when the answer is recorded
    # and again when its actions are executed, so the leaderboard reads two numbers instead of
    # decoding every answer's JSON. Null: not counted (rows from elsewhere); readers count the
    # JSON themselves.
    actions_count = models.PositiveIntegerField(
        null=True, blank=True, help_text="Actions proposed (holds excluded)"
    )
    rejected_actions_count = models.PositiveIntegerField(
        null=True, blank=True, help_text="Proposed actions the validator or the engine rejected"
    )
    status = models.CharField(max_length=20, choices=InvocationStatus.choices)
    error = models.TextField(blank=True, default="")
    latency_ms = models.PositiveIntegerField(default=0)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=18, decimal_places=8, default=0)
    retries = models.PositiveSmallIntegerField(default=0)
    # Decision cache (agents.cache): the answer came from the cache, not a model call.
    cached = models.BooleanField(default=False)
    cache_key = models.CharField(max_length=64, blank=True, default="")
    # Time this call waited for its provider's shared limits (agents.limits), in ms.
    limit_wait_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["round_id", "participant_id"]
        constraints = [
            # A resumed round never invokes (and pays for) the same agent twice.
            models.UniqueConstraint(fields=["participant", "round"], name="invocation_once_per_round"),
            models.CheckConstraint(
                condition=Q(status__in=InvocationStatus.values), name="invocation_status_valid"
            ),
            models.CheckConstraint(condition=Q(cost_usd__gte=0), name="invocation_cost_not_negative"),
            models.CheckConstraint(
                condition=Q(actions_count__isnull=True, rejected_actions_count__isnull=True)
                | Q(rejected_actions_count__lte=F("actions_count")),
                name="invocation_rejected_within_actions",
            ),
        ]
        indexes = [
            # Pages list a participant's invocations newest first.
            models.Index(fields=["participant", "-created_at"], name="invocation_participant_recent"),
        ]

    def __str__(self):
        return f"invocation {self.pk} participant {self.participant_id} round {self.round_id} {self.status}"


class StructuredOutputCapability(models.Model):
    """The strongest structured output mode a server accepted for a model (auto negotiation).

    Written when a round records an invocation that learned it; read into the process-wide
    memory (agents.providers.structured.capabilities) so the next call starts there. Delete
    a row to make the next call probe from the strongest mode again (e.g. after a server
    upgrade).
    """

    Mode = models.TextChoices("Mode", [(mode, mode) for mode in STRUCTURED_OUTPUT_MODES])

    base_url = models.CharField(
        max_length=300, help_text="The server's base URL, lowercased, no trailing slash"
    )
    model = models.CharField(max_length=200)
    mode = models.CharField(max_length=24, choices=Mode.choices)
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["base_url", "model"]
        verbose_name_plural = "structured output capabilities"
        constraints = [
            models.UniqueConstraint(
                fields=["base_url", "model"], name="structured_output_once_per_server_model"
            ),
            models.CheckConstraint(
                condition=Q(mode__in=list(STRUCTURED_OUTPUT_MODES)), name="structured_output_mode_valid"
            ),
        ]

    def __str__(self):
        return f"{self.model} at {self.base_url}: {self.mode}"


class DecisionCacheEntry(models.Model):
    """One recorded model answer, keyed by everything that decided it (agents.cache.decision_key):
    provider, model, sampling parameters, system and user prompt, instance seed."""

    key = models.CharField(max_length=64, unique=True)
    provider = models.CharField(max_length=32)
    model = models.CharField(max_length=200)
    seed = models.BigIntegerField(default=0)
    raw_text = models.TextField(blank=True, default="")
    structured = models.JSONField(null=True, blank=True)
    parsed_decision = models.JSONField(default=dict, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"cached answer {self.key[:12]} ({self.provider}/{self.model})"
