"""Password hashing with argon2id (argon2-cffi's defaults, RFC 9106's second recommendation)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from paperfeed.errors import PaperfeedError

MIN_LENGTH = 10
MAX_LENGTH = 1024  # hashing a megabyte "password" is a denial of service, not a password

_hasher = PasswordHasher()  # argon2id


def check_new_password(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise PaperfeedError(f"the password must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise PaperfeedError(f"the password must have at most {MAX_LENGTH} characters")
    if password.strip() != password or not password.strip():
        raise PaperfeedError("the password must not start or end with spaces")


def hash_password(password: str) -> str:
    check_new_password(password)
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's defaults."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


# Verifying against this when the login is unknown keeps the response time the same, so
# timing does not tell which usernames exist.
DUMMY_HASH = _hasher.hash("not a real password, only here for constant timing")
