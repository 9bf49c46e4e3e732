"""What a participant's `llm_config` may hold, checked once for every door (API, admin, services).

The config is returned by every read, so it must never carry a credential: the provider key goes
in as `api_key` (stored encrypted) or is named by `api_key_env`.
"""

import json

from agents.pricing import MAX_PRICE_PER_MTOK, price_for
from gauntlet.errors import DomainError

MAX_LLM_CONFIG_BYTES = 64 * 1024
SECRET_CONFIG_WORDS = ("api_key", "apikey", "secret", "password", "token", "authorization")
SECRET_CONFIG_ALLOWED = {"api_key_env", "max_tokens", "max_tokens_param"}


def _credential_keys(node) -> list[str]:
    found = []
    if isinstance(node, dict):
        for key, item in node.items():
            lowered = str(key).lower()
            if lowered not in SECRET_CONFIG_ALLOWED and any(word in lowered for word in SECRET_CONFIG_WORDS):
                found.append(str(key))
            found.extend(_credential_keys(item))
    elif isinstance(node, list):
        for item in node:
            found.extend(_credential_keys(item))
    return found


def llm_config_check(value, *, field: str = "llm_config") -> dict:
    """Return `value` if it is a storable, credential-free JSON object; else raise DomainError."""
    if not isinstance(value, dict):
        raise DomainError(f"{field} must be a JSON object", field=field)
    try:
        size = len(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise DomainError(f"{field} must hold only JSON values", field=field) from exc
    if size > MAX_LLM_CONFIG_BYTES:
        raise DomainError(f"{field} must be at most {MAX_LLM_CONFIG_BYTES // 1024} KB of JSON", field=field)
    pricing = value.get("pricing")
    if pricing is not None and price_for("", pricing) is None:
        raise DomainError(
            f"{field}.pricing must be an object with input_per_mtok and output_per_mtok, each a number of "
            f"USD per million tokens from 0 to {MAX_PRICE_PER_MTOK}",
            field=field,
        )
    secrets = _credential_keys(value)
    if secrets:
        raise DomainError(
            f"{field} must not hold credentials ({', '.join(sorted(set(secrets)))}): send the provider key as "
            "api_key (stored encrypted, never returned) or name an environment variable in api_key_env",
            field=field,
        )
    return value
