"""What an API key looks like (docs/authentication.md, "The key format").

A key is ``rpck_``, 32 random base62 characters from ``secrets`` (190 bits) and a 6-character
checksum of them (keys made before the checksum: ``rpck_`` and 43 URL-safe characters, still
valid); a token exchanged at ``/_admin/token`` is the same with ``rpct_``. The prefix and the
checksum let secret scanners and people recognise one, and a mistyped key is refused without
a query.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import zlib

from rpcserver.core.credentials import KEY_PREFIX, TOKEN_PREFIX

#: A key made before keys had a checksum: the prefix and 43 URL-safe characters.
OLD_KEY_LENGTH = len(KEY_PREFIX) + 43
#: A key now: the prefix, 32 random base62 characters and a 6-character base62 CRC32 of them.
KEY_RANDOM, KEY_CHECKSUM = 32, 6
KEY_LENGTH = len(KEY_PREFIX) + KEY_RANDOM + KEY_CHECKSUM
_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


def new_api_key(prefix: str = KEY_PREFIX) -> str:
    """``rpck_`` (a token: ``rpct_``) + 32 random base62 characters (190 bits) + their
    checksum, GitHub's token format: a secret scanner can tell a real key from noise without
    asking the server."""
    random = "".join(secrets.choice(_BASE62) for _ in range(KEY_RANDOM))
    return prefix + random + _checksum(random)


def _checksum(random: str) -> str:
    value = zlib.crc32(random.encode("ascii"))
    digits = []
    for _ in range(KEY_CHECKSUM):
        value, digit = divmod(value, 62)
        digits.append(_BASE62[digit])
    return "".join(reversed(digits))


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def is_key_shaped(key: object) -> bool:
    """A key of ours: the current form with a checksum that holds (one that does not is
    refused without a query), or the older form without one."""
    if not isinstance(key, str) or not key.startswith((KEY_PREFIX, TOKEN_PREFIX)) \
            or not key.isascii():
        return False
    if len(key) == OLD_KEY_LENGTH and key.startswith(KEY_PREFIX):
        return True
    if len(key) != KEY_LENGTH or not key[len(KEY_PREFIX):].isalnum():
        return False
    random, checksum = key[len(KEY_PREFIX):-KEY_CHECKSUM], key[-KEY_CHECKSUM:]
    return hmac.compare_digest(_checksum(random), checksum)
