"""Encryption at rest for participants' own provider API keys.

The Fernet key is derived from SECRET_KEY, so a database dump alone does not reveal the
keys. Rotating SECRET_KEY makes stored keys unreadable: they decrypt to None and the
participant's invocations record a missing-key error until the key is given again.
"""

import base64
import hashlib
import logging

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

logger = logging.getLogger(__name__)


def _fernet() -> Fernet:
    digest = hashlib.sha256(b"gauntlet.participant-api-key:" + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt_secret(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt_secret(token: str) -> str | None:
    if not token:
        return None
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        logger.warning("A stored API key could not be decrypted (was SECRET_KEY rotated?)")
        return None
