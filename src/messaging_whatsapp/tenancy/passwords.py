"""Passwords: which are strong enough, and hashing them without stalling the event loop.

Strength is zxcvbn's estimate (score 0 to 4; at least 2 here, "somewhat guessable", with logins
throttled) against its dictionaries plus the user's own email, their business's name and words
Brazilians often build passwords from, which zxcvbn's English lists miss; the email itself is
refused outright.

argon2 is deliberately slow (tens of milliseconds of CPU). On the event loop that also answers
webhooks, a login flood stalled them for seconds; here every hash runs in one worker thread, and
when too many wait for it a login is refused with 429 instead of queueing without bound.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn import zxcvbn  # type: ignore[import-untyped]

from messaging_whatsapp.errors import InvalidInput, RateLimited

T = TypeVar("T")

MIN_LENGTH = 8
MAX_LENGTH = 256
MIN_SCORE = 2
COMMON_WORDS = (
    "senha", "mudar", "trocar", "acesso", "entrar", "admin", "administrador", "usuario", "teste",
    "brasil", "saopaulo", "flamengo", "corinthians", "palmeiras", "vasco", "gremio", "cruzeiro",
    "whatsapp", "zap", "loja", "empresa", "vendas", "atendimento", "suporte", "amor", "deus",
)  # fmt: skip
# Hashes waiting for the worker thread beyond which a login is refused (each takes ~50 ms).
MAX_WAITING = 32

_hasher = PasswordHasher()
# Verified against when the email is unknown, so a wrong email costs as much as a wrong password.
UNKNOWN_USER_HASH = _hasher.hash("not-a-real-password")
_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="password-hash")
_waiting = 0


def password_problem(password: str, *, email: str = "", business: str = "") -> str | None:
    """Why the password is not acceptable for this user, or None."""
    if len(password) < MIN_LENGTH:
        return f"password must have at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"password must have at most {MAX_LENGTH} characters"
    if not password.strip():
        return "password must not be only spaces"
    name = email.partition("@")[0]
    if email and email.casefold() in password.casefold():
        return "password must not contain your email"
    if len(_without(password, _words(name, business))) < 4:
        return "password must not be built from your name, email or business's name and numbers"
    estimate = zxcvbn(password, user_inputs=[email, name, business, *COMMON_WORDS])
    if estimate["score"] < MIN_SCORE:
        warning = estimate["feedback"]["warning"] or "it is easy to guess"
        return f"password is too weak: {warning.rstrip('.')}; use a longer phrase of unrelated words"
    return None


def check_password(password: str, *, email: str = "", business: str = "") -> None:
    """Refuse a weak password with InvalidInput (code weak_password)."""
    problem = password_problem(password, email=email, business=business)
    if problem is not None:
        raise InvalidInput(problem, code="weak_password")


def _words(*texts: str) -> list[str]:
    """The words of 3 letters or more in these texts, folded, longest first."""
    words = {word for text in texts for word in re.split(r"[^\w]+|_|\d+", text.casefold()) if len(word) >= 3}
    return sorted(words, key=len, reverse=True)


def _without(password: str, words: list[str]) -> str:
    """The letters of the password left once those words, digits and symbols are taken out."""
    rest = password.casefold()
    for word in words:
        rest = rest.replace(word, "")
    return "".join(char for char in rest if char.isalpha())


async def hash_password(password: str) -> str:
    """The argon2 hash, computed in the password thread."""
    return await _in_worker(_hasher.hash, password)


async def verify_password(password_hash: str, password: str) -> bool:
    """Whether the password matches the hash, checked in the password thread."""

    def verify() -> bool:
        try:
            return _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    return await _in_worker(verify)


async def _in_worker(function: Callable[..., T], *args: str) -> T:
    global _waiting
    if _waiting >= MAX_WAITING:
        raise RateLimited("too many logins at once; try again in a moment", retry_after=1.0)
    _waiting += 1
    try:
        return await asyncio.get_running_loop().run_in_executor(_executor, function, *args)
    finally:
        _waiting -= 1
