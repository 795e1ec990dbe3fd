"""How many subscriptions each publisher holds, and how long one prefix may be.

A publisher is a node's ``pub`` (and ``iopub``) or a forwarder's outer ``pub``. Each
holds what the subscribers of its own group subscribe to, bounded by
``[system] max_subscriptions``, and what the forwarder *out of* its group passes in: the
forwarder's XSUB carries every prefix subscribed on the forwarder's outer side (at most
that forwarder's cap), and its last-value cache subscribes to ``<node>/hb`` and
``<node>/status`` of every node behind it and ``<forwarder>/hb`` of every forwarder
behind it. So, from the outermost forwarder inwards::

    passes(F) = cap(F) + cached(F)
    cap(F)    = forwarders.F.max_subscriptions
                or max_subscriptions + passes(the forwarder out of F's outer group)
    share(N)  = nodes.N.max_subscriptions_per_peer
                or max_subscriptions + passes(the forwarder out of N's group)
    cap(N)    = share(N) + max_subscriptions

A node counts per peer address (``share``) and in total (``cap``). A node cannot tell the
forwarder's address from any other (the forwarder connects from whichever interface
routes to the node, which the system file does not say; on one machine everything is
127.0.0.1), so every address gets the share that holds what the forwarder may pass, and
the total leaves ``max_subscriptions`` for the rest of the group. A forwarder cannot tell
its outer peers apart at all (libzmq's proxy does not say who subscribed), so it has a
total only (``share`` is None).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from rovbus.config.models import ForwarderConfig
from rovbus.config.system import SystemConfig

__all__ = ["SubscriptionCaps", "SubscriptionPlan"]


@dataclass(frozen=True, slots=True)
class SubscriptionCaps:
    """The limits of one publisher."""

    max_prefix: int  # bytes
    share: int | None  # per peer address; None where peers cannot be told apart
    cap: int  # in total


class SubscriptionPlan:
    """The caps of every publisher of a system, each worked out once."""

    def __init__(self, system: SystemConfig) -> None:
        self.system = system
        self.base = system.system.max_subscriptions
        self._nodes_in = Counter(node.group for node in system.nodes.values())
        self._into: dict[str, list[ForwarderConfig]] = {}
        self._out_of: dict[str, ForwarderConfig] = {}
        for fwd in system.forwarders.values():
            self._into.setdefault(fwd.outer, []).append(fwd)
            self._out_of.setdefault(fwd.inner, fwd)
        self._inflow: dict[str, int] = {}
        self._behind: dict[str, tuple[int, int]] = {}

    def out_of(self, group: str) -> ForwarderConfig | None:
        """The forwarder that connects to the publishers of ``group``, if any."""
        return self._out_of.get(group)

    def behind(self, fwd: ForwarderConfig) -> tuple[int, int]:
        """``(nodes, forwarders)`` behind ``fwd``, at any depth."""
        if fwd.name not in self._behind:
            self._behind[fwd.name] = (0, 0)  # a cycle (check_forwarder_tree) ends here
            nodes, forwarders = self._nodes_in[fwd.inner], 0
            for inner in self._into.get(fwd.inner, []):
                n, f = self.behind(inner)
                nodes, forwarders = nodes + n, forwarders + f + 1
            self._behind[fwd.name] = (nodes, forwarders)
        return self._behind[fwd.name]

    def cached(self, fwd: ForwarderConfig) -> int:
        """Topics ``fwd``'s last-value cache subscribes to at each publisher it reads."""
        nodes, forwarders = self.behind(fwd)
        return 2 * nodes + forwarders

    def forwarder_cap(self, fwd: ForwarderConfig) -> int:
        own = fwd.max_subscriptions
        return own if own is not None else self.base + self.inflow(fwd.outer)

    def passes(self, fwd: ForwarderConfig) -> int:
        """Subscriptions ``fwd`` may hold at each publisher of its inner group."""
        return self.forwarder_cap(fwd) + self.cached(fwd)

    def inflow(self, group: str) -> int:
        """What the forwarder out of ``group`` may pass to each publisher of it (0: none)."""
        if group not in self._inflow:
            self._inflow[group] = 0  # a cycle (check_forwarder_tree) ends here
            fwd = self.out_of(group)
            self._inflow[group] = self.passes(fwd) if fwd is not None else 0
        return self._inflow[group]

    def node(self, name: str) -> SubscriptionCaps:
        node = self.system.node(name)
        own = node.max_subscriptions_per_peer
        share = own if own is not None else self.base + self.inflow(node.group)
        return SubscriptionCaps(self.system.system.max_prefix, share, share + self.base)

    def forwarder(self, name: str) -> SubscriptionCaps:
        fwd = self.system.forwarder(name)
        return SubscriptionCaps(self.system.system.max_prefix, None, self.forwarder_cap(fwd))
