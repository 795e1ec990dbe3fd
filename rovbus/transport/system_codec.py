"""The one way a daemon or a client builds its codec from the system file.

``system_codec`` signs and verifies with the system key, under ``[security]``'s scheme,
replay window, ``max_age`` and ``max_skew`` (unsigned without ``[security]``). It serves
pub traffic; a daemon's conversations use ``Codec.for_start`` on it (docs/protocol.md,
Signing).
"""

from __future__ import annotations

from rovbus.config import SystemConfig
from rovbus.wire.codec import DEFAULT_MAX_SKEW, Codec
from rovbus.wire.serializers import Serializer
from rovbus.wire.signing import DEFAULT_SCHEME

__all__ = ["system_codec"]


def system_codec(
    system: SystemConfig, username: str, *, serializer: Serializer | None = None
) -> Codec:
    """A codec with ``system``'s key and checks, stamping ``username`` on what it sends;
    ``serializer`` defaults to the system's. Raises ``ConfigError`` for an unreadable key."""
    security = system.security
    return Codec(
        system.hmac_key(),
        security.signature_scheme if security else DEFAULT_SCHEME,
        username=username,
        serializer=serializer or Serializer(system.system.serializer),
        replay_window=security.replay_window if security else 4096,
        max_age=security.max_age if security else None,
        max_skew=security.max_skew if security else DEFAULT_MAX_SKEW,
    )
