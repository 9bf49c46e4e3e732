"""A masked replay on the pages (docs/memory.md): the pages keep the masked world the agents and
the engine used (names, prices, quantities, times), and label it with the real one.

- `{% masked_banner competition %}` says it is a masked replay and gives the way back:
  "ASSET_1 = BTC/USDT (masked price = real x 0.0025)", the time shift, and what is unchanged.
- `symbol|real_name:competition` -> "ASSET_1 (BTC/USDT)"; `text|real_names:competition` does it
  inside a sentence (an action); `moment|real_time:competition` -> the real moment.
Each is the plain value for a competition that is not masked.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal

from django import template
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import mark_safe

register = template.Library()
MASKED_NAME = re.compile(r"\bASSET_\d+\b")


def _names(competition) -> dict[str, str]:
    return dict((getattr(competition, "mask", None) or {}).get("symbols") or {})


@register.filter
def real_name(symbol, competition):
    """The masked symbol with its real instrument beside it (escaped HTML)."""
    real = _names(competition).get(str(symbol))
    if real is None:
        return conditional_escape(symbol)
    return format_html('{} <span class="real-name" title="the real instrument behind the masked name">({})</span>',
                       symbol, real)


@register.filter
def real_names(text, competition):
    """Every masked name in `text` followed by its real instrument (escaped HTML)."""
    names = _names(competition)
    escaped = str(conditional_escape(text))
    if not names:
        return mark_safe(escaped)  # noqa: S308 -- escaped above
    return mark_safe(MASKED_NAME.sub(  # noqa: S308 -- escaped above, the names come from the mask
        lambda match: f"{match[0]} ({conditional_escape(names[match[0]])})" if match[0] in names else match[0],
        escaped,
    ))


@register.filter
def real_time(moment, competition):
    """The real moment behind a masked market time (the same moment when not masked)."""
    mask = getattr(competition, "mask", None) or {}
    if not isinstance(moment, datetime) or not mask:
        return moment
    return moment - timedelta(weeks=int(mask["shift_weeks"]))


def masked_world(competition) -> dict | None:
    """What the banner shows: each masked name with its instrument and price constant, and the shift."""
    mask = getattr(competition, "mask", None) or {}
    if not mask:
        return None
    shift = timedelta(weeks=int(mask["shift_weeks"]))
    scales = mask.get("scales") or {}
    pairs = [
        {"masked": masked, "real": mask["symbols"][masked], "scale": Decimal(scales[masked]).normalize()}
        for masked in competition.symbols or [] if masked in mask["symbols"]
    ]  # fmt: skip
    return {
        "pairs": pairs, "shift_weeks": int(mask["shift_weeks"]),
        "masked_start": competition.start_time, "real_start": competition.start_time - shift,
    }  # fmt: skip


@register.inclusion_tag("web/_masked_banner.html")
def masked_banner(competition, prompt: bool = False):
    return {"world": masked_world(competition), "prompt": prompt}
