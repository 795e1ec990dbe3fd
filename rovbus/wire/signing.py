"""HMAC signing as jupyter_client does it, and the bounded replay guard.

The signature is the lowercase hex HMAC digest of the header, parent_header, metadata and
content frames, as sent, in that order. An empty key means no signing: the signature
frame is empty. Buffers are not covered, which is why CAN bytes live in content.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict
from collections.abc import Sequence

DEFAULT_SCHEME = "hmac-sha256"


class Signer:
    """Signs and verifies the four dict frames with one key and scheme.

    The HMAC object is built once and copied per message, as jupyter_client does.
    """

    __slots__ = ("_auth", "key", "scheme")

    def __init__(self, key: bytes = b"", scheme: str = DEFAULT_SCHEME) -> None:
        if not scheme.startswith("hmac-"):
            raise ValueError(f"signature scheme {scheme!r} must look like 'hmac-sha256'")
        digest = scheme.removeprefix("hmac-")
        if digest not in hashlib.algorithms_available:
            raise ValueError(f"signature scheme {scheme!r}: hashlib has no {digest!r}")
        self.key = bytes(key)
        self.scheme = scheme
        self._auth = hmac.new(self.key, digestmod=digest) if self.key else None

    @property
    def enabled(self) -> bool:
        return self._auth is not None

    def sign(self, parts: Sequence[bytes]) -> bytes:
        """The signature frame for ``parts``: hex digest, or ``b""`` without a key."""
        if self._auth is None:
            return b""
        h = self._auth.copy()
        for part in parts:
            h.update(part)
        return h.hexdigest().encode("ascii")

    def verify(self, signature: bytes, parts: Sequence[bytes]) -> bool:
        return hmac.compare_digest(signature, self.sign(parts))


class ReplayGuard:
    """Remembers the last ``size`` signatures it was given; the oldest goes first, in O(1).

    Record a signature only after it verified: an attacker must not be able to fill the
    guard with garbage and push real signatures out.
    """

    __slots__ = ("_seen", "size")

    def __init__(self, size: int = 4096) -> None:
        if size < 1:
            raise ValueError(f"replay window must be at least 1, got {size}")
        self.size = size
        self._seen: OrderedDict[bytes, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, signature: bytes) -> bool:
        return signature in self._seen

    def add(self, signature: bytes) -> None:
        self._seen[signature] = None
        if len(self._seen) > self.size:
            self._seen.popitem(last=False)
