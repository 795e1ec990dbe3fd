"""HMAC signing as jupyter_client does it, the bounded replay guard, and start keys.

The signature is the lowercase hex HMAC digest of the header, parent_header, metadata and
content frames, as sent, in that order. An empty key means no signing: the signature
frame is empty. Buffers are not covered, which is why CAN bytes live in content.

A daemon's conversations (requests to it, its replies) are signed with its *start key*,
derived from the system key, its name and its session (fresh at every start):
``derive_key``. docs/protocol.md, Signing, says why and how.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

DEFAULT_SCHEME = "hmac-sha256"

#: HKDF's salt for start keys (RFC 5869: a fixed, non-secret value)
START_KEY_SALT = b"rovbus start key"


_TRANS_5C = bytes(x ^ 0x5C for x in range(256))
_TRANS_36 = bytes(x ^ 0x36 for x in range(256))


def digest_of(scheme: str) -> str:
    """The hashlib name in ``scheme`` (``hmac-sha256`` -> ``sha256``); ``ValueError`` when
    it is not ``hmac-`` and a hashlib digest of fixed size."""
    if not scheme.startswith("hmac-"):
        raise ValueError(f"signature scheme {scheme!r} must look like 'hmac-sha256'")
    digest = scheme.removeprefix("hmac-")
    if digest not in hashlib.algorithms_available:
        raise ValueError(f"signature scheme {scheme!r}: hashlib has no {digest!r}")
    if hashlib.new(digest).digest_size == 0:  # shake_128, shake_256
        raise ValueError(f"signature scheme {scheme!r}: {digest!r} has no fixed digest size")
    return digest


class Signer:
    """Signs and verifies the four dict frames with one key and scheme.

    HMAC (RFC 2104) with the keyed inner and outer hash states computed once and copied
    per message: the same digest as ``hmac.new(key, msg, digest)``, as jupyter_client
    computes it, at about half the cost of copying an ``hmac.HMAC`` object.
    """

    __slots__ = ("_inner", "_outer", "key", "scheme")

    def __init__(self, key: bytes = b"", scheme: str = DEFAULT_SCHEME) -> None:
        digest = digest_of(scheme)
        self.key = bytes(key)
        self.scheme = scheme
        self._inner: Any = None
        self._outer: Any = None
        if self.key:
            block = hashlib.new(digest).block_size
            k = self.key if len(self.key) <= block else hashlib.new(digest, self.key).digest()
            k = k.ljust(block, b"\0")
            self._inner = hashlib.new(digest, k.translate(_TRANS_36))
            self._outer = hashlib.new(digest, k.translate(_TRANS_5C))

    @property
    def enabled(self) -> bool:
        return self._inner is not None

    def sign(self, parts: Sequence[bytes]) -> bytes:
        """The signature frame for ``parts``: hex digest, or ``b""`` without a key."""
        if self._inner is None:
            return b""
        inner = self._inner.copy()
        inner.update(b"".join(parts))  # one call beats four for the small frames of CAN
        outer = self._outer.copy()
        outer.update(inner.digest())
        hexdigest: str = outer.hexdigest()
        return hexdigest.encode("ascii")


def derive_key(key: bytes, name: str, session: str, scheme: str = DEFAULT_SCHEME) -> bytes:
    """The start key of daemon ``name`` in its start ``session``, from the system ``key``.

    HKDF (RFC 5869) with the scheme's hash: salt ``START_KEY_SALT``, input key material
    ``key``, info = the UTF-8 name's length (2 bytes, big-endian), the name, then the
    session in UTF-8; one hash length of output. Returned as lowercase hex in ASCII: a text
    key, as a Jupyter connection file stores keys. ``ValueError`` for an empty key, a
    scheme that is not ``hmac-<hashlib name>``, or a name over 65,535 bytes.
    """
    if not key:
        raise ValueError("a start key is derived from a key; this one is empty")
    digest = digest_of(scheme)
    encoded = name.encode("utf-8")
    if len(encoded) > 0xFFFF:
        raise ValueError(f"name of {len(encoded)} bytes: a start key's name has at most 65,535")
    info = len(encoded).to_bytes(2, "big") + encoded + session.encode("utf-8")
    return hkdf(START_KEY_SALT, key, info, digest).hex().encode("ascii")


def hkdf(salt: bytes, key: bytes, info: bytes, digest: str) -> bytes:
    """HKDF (RFC 5869) with hashlib's ``digest``, one hash length of output: extract, then
    the first block of expand."""
    prk = hmac.new(salt, key, digest).digest()
    return hmac.new(prk, info + b"\x01", digest).digest()


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

    def record(self, signature: bytes) -> bool:
        """Add ``signature``; ``False`` (and nothing changes) if it was already there."""
        seen = self._seen
        if signature in seen:
            return False
        seen[signature] = None
        if len(seen) > self.size:
            seen.popitem(last=False)
        return True
