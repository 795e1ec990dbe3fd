"""Each publisher's subscription caps, worked out from the system file."""

from __future__ import annotations

from rovbus.config import parse_system
from rovbus.config.subscriptions import SubscriptionCaps, SubscriptionPlan


def table(kind: str, name: str, port: int, **keys: str) -> str:
    channels = (
        ("pub", "shell", "control", "stdin", "hb")
        if kind == "nodes"
        else ("pub", "request", "control")
    )
    lines = [f"[{kind}.{name}]", *(f"{k} = {v}" for k, v in keys.items())]
    lines.append(f"[{kind}.{name}.endpoints]")
    lines += [f'{c} = "tcp://127.0.0.1:{port + i}"' for i, c in enumerate(channels)]
    return "\n".join(lines) + "\n"


def chain(system: str = "", **tether: str) -> str:
    """Two vehicle nodes, one topside node; vehicle -> topside -> shore."""
    return (
        f'[system]\nname = "t"\n{system}\n[groups.vehicle]\n[groups.topside]\n[groups.shore]\n'
        + table("nodes", "a", 7000, group='"vehicle"')
        + table("nodes", "b", 7010, group='"vehicle"')
        + table("nodes", "c", 7020, group='"topside"')
        + table("forwarders", "tether", 7100, inner='"vehicle"', outer='"topside"', **tether)
        + table("forwarders", "gateway", 7110, inner='"topside"', outer='"shore"')
    )


def test_each_publisher_holds_what_the_forwarders_outside_it_may_pass() -> None:
    plan = SubscriptionPlan(parse_system(chain()))
    # the outermost forwarder: the shore's own subscribers; its cache reads a, b, c, tether
    assert plan.forwarder("gateway") == SubscriptionCaps(256, None, 1024)
    assert plan.passes(plan.system.forwarder("gateway")) == 1024 + 2 * 3 + 1
    # tether: the topside's own, and what the gateway passes; its cache reads a and b
    assert plan.forwarder("tether") == SubscriptionCaps(256, None, 1024 + 1031)
    # a vehicle node: per address, what tether passes, and the group's own
    assert plan.node("a") == SubscriptionCaps(256, 1024 + 2055 + 4, 1024 + 2059 + 1024)
    assert plan.node("c") == SubscriptionCaps(256, 1024 + 1031, 1024 + 1031 + 1024)


def test_the_system_table_and_the_overrides_set_them() -> None:
    text = chain("max_prefix = 128\nmax_subscriptions = 10", max_subscriptions="100")
    plan = SubscriptionPlan(parse_system(text))
    assert plan.forwarder("tether") == SubscriptionCaps(128, None, 100)
    assert plan.node("a") == SubscriptionCaps(128, 10 + 104, 10 + 104 + 10)
    text = text.replace(
        'group = "vehicle"\n', 'group = "vehicle"\nmax_subscriptions_per_peer = 500\n', 1
    )
    assert SubscriptionPlan(parse_system(text)).node("a") == SubscriptionCaps(128, 500, 510)
