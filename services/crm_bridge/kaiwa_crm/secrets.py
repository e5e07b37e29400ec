"""Secrets at rest: integration keys, client secrets and access tokens are stored
encrypted with Fernet (AES-128-CBC + HMAC-SHA256) under keys from configuration, never
in the clear; a CRM admin's own key for the built-in CRM is only stored as a hash."""

from __future__ import annotations

import hashlib
import hmac
import secrets as _secrets

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretBox:
    def __init__(self, keys: tuple[str, ...]):
        self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode() if plaintext else ""

    def open(self, ciphertext: str) -> str:
        """The plaintext, or "" when nothing is stored or the keys cannot read it."""
        if not ciphertext:
            return ""
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            return ""


def hash_key(key: str, salt: str = "") -> str:
    salt = salt or _secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", key.encode(), bytes.fromhex(salt), 100_000).hex()
    return f"{salt}${digest}"


def key_matches(key: str, stored: str) -> bool:
    if "$" not in stored:
        return False
    salt, _ = stored.split("$", 1)
    return hmac.compare_digest(hash_key(key, salt), stored)
