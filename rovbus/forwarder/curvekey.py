"""The CURVE key a request crossed the tether with, written into the request for the node.

The forwarder's ZAP handler gives each connection it admits a ``User-Id``
(:func:`rovbus.transport.curve.allowed_client_keys`): ``client:NAME`` for a listed client
key, :data:`~rovbus.transport.curve.FORWARDER_USER_ID` for the server's own key (a
forwarder further out, which wrote the key of its own client already). :func:`stamped`
puts that name in the request's ``metadata`` under :data:`~rovbus.wire.origin.CURVE_KEY`,
replacing whatever the client wrote there, or removes it from a request that did not
come over CURVE, and signs the request again with the key that verified it: the node
checks the signature as before and names the key in the origin of every frame the request
makes it transmit (docs/protocol.md, Origin). Only the metadata frame and the signature
change; header, parent header and content stay the bytes the client sent.
"""

from __future__ import annotations

from rovbus.transport.curve import CLIENT_USER_ID, FORWARDER_USER_ID
from rovbus.wire.codec import Codec
from rovbus.wire.message import Message
from rovbus.wire.origin import CURVE_KEY
from rovbus.wire.serializers import pack

__all__ = ["stamped"]


def stamped(codec: Codec, request: Message, body: list[bytes], user_id: str) -> list[bytes]:
    """``body`` (the frames after the delimiter of ``request`` as received: signature,
    the four maps, buffers) with ``metadata.curve_key`` as the connection's ``user_id``
    says, signed again with ``codec``; ``body`` itself when that changes nothing."""
    metadata = dict(request.metadata)
    if user_id.startswith(CLIENT_USER_ID):
        metadata[CURVE_KEY] = user_id.removeprefix(CLIENT_USER_ID)
    elif user_id != FORWARDER_USER_ID:
        metadata.pop(CURVE_KEY, None)
    if metadata == request.metadata:
        return body
    parts = [*body[1:3], pack(metadata, request.serializer), body[4]]
    return [codec.signer.sign(parts), *parts, *body[5:]]
