"""Cost of an invocation in USD from agents/pricing.json (overridable per participant)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path

PRICING_FILE = Path(__file__).with_name("pricing.json")
MILLION = Decimal("1000000")
COST_PLACES = Decimal("0.00000001")


@dataclass(frozen=True)
class Price:
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    source: str  # the table entry or "llm_config.pricing"


@cache
def price_table() -> dict[str, Price]:
    data = json.loads(PRICING_FILE.read_text())
    return {
        name: Price(Decimal(entry["input_per_mtok"]), Decimal(entry["output_per_mtok"]), name)
        for name, entry in data["models"].items()
    }


# No model costs more than this per million tokens; a larger (or negative, or non-finite)
# override is a typo, and would overflow the cost column.
MAX_PRICE_PER_MTOK = Decimal("100000")


def price_is_sane(value: Decimal) -> bool:
    return value.is_finite() and Decimal(0) <= value <= MAX_PRICE_PER_MTOK


def price_for(model: str, override: dict | None = None) -> Price | None:
    """The participant's override, else the exact entry, else the longest matching prefix."""
    if override:
        try:
            price = Price(
                Decimal(str(override["input_per_mtok"])),
                Decimal(str(override["output_per_mtok"])),
                "llm_config.pricing",
            )
        except (KeyError, InvalidOperation, TypeError):
            return None
        if not all(price_is_sane(value) for value in (price.input_per_mtok, price.output_per_mtok)):
            return None
        return price
    table = price_table()
    name = (model or "").strip().lower()
    name = name.rsplit("/", 1)[-1]  # gateway names like "openai/gpt-4o" or "deepseek/deepseek-chat"
    if name in table:
        return table[name]
    matches = [key for key in table if name.startswith(key + "-") or name.startswith(key + ":")]
    if not matches:
        return None
    return table[max(matches, key=len)]


def invocation_cost(
    model: str, input_tokens: int, output_tokens: int, override: dict | None = None
) -> tuple[Decimal, str]:
    """(cost in USD, note). Unknown model: 0 with a note saying so."""
    price = price_for(model, override)
    if price is None:
        if override:
            return Decimal(
                "0"
            ), "llm_config.pricing is malformed (needs input_per_mtok and output_per_mtok); cost 0"
        return Decimal("0"), f"no price for model {model!r} in agents/pricing.json; cost 0"
    cost = (
        Decimal(input_tokens or 0) * price.input_per_mtok
        + Decimal(output_tokens or 0) * price.output_per_mtok
    ) / MILLION
    return cost.quantize(COST_PLACES), f"priced as {price.source}"
