"""The check that no endpoint is used twice, on many endpoints.

``check_endpoints`` finds collisions through an index (``BoundEndpoints``) instead of
comparing every pair, so it stays linear in the nodes (tools/bench_config.py measures
that). What must not change is what it finds: the same first collision for each
endpoint as the pairwise rule (``Endpoint.collides_with``), with the same words.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rovbus.config import parse_system
from rovbus.config.endpoints import BoundEndpoints, Endpoint
from rovbus.errors import ConfigError
from tools.bench_config import system_text

HOSTS = ["127.0.0.1", "localhost", "LocalHost", "*", "0.0.0.0", "[::]", "10.0.0.1", "host-a"]

endpoints = st.one_of(
    st.builds(
        Endpoint,
        st.just("tcp"),
        host=st.sampled_from(HOSTS),
        port=st.integers(min_value=1, max_value=3),
    ),
    st.builds(Endpoint, st.just("ipc"), path=st.sampled_from(["/a", "/b"])),
    st.builds(Endpoint, st.just("inproc"), path=st.sampled_from(["a", "/a"])),
)


@given(st.lists(endpoints, max_size=30))
def test_the_index_finds_the_first_collision_the_pairwise_rule_finds(
    bound_in_order: list[Endpoint],
) -> None:
    bound: BoundEndpoints[int] = BoundEndpoints()
    for index, endpoint in enumerate(bound_in_order):
        pairwise = next(
            (
                (other, j)
                for j, other in enumerate(bound_in_order[:index])
                if endpoint.collides_with(other)
            ),
            None,
        )
        assert bound.first_collision(endpoint) == pairwise
        bound.add(endpoint, index)


LATE_NODES = """
[nodes.late]
group = "vehicle"
[nodes.late.endpoints]
pub = "tcp://10.3.49.1:7100"
shell = "tcp://*:7101"
control = "tcp://127.0.0.1:9002"
stdin = "ipc:///run/rovbus/late"
hb = "tcp://192.168.1.1:9004"

[nodes.later]
group = "vehicle"
[nodes.later.endpoints]
pub = "tcp://192.168.1.2:9100"
shell = "tcp://10.200.0.9:7101"
control = "tcp://LOCALHOST:9002"
stdin = "ipc:///run/rovbus/late"
hb = "tcp://192.168.1.2:9104"
"""


def test_collisions_among_many_endpoints_are_found_with_the_same_words() -> None:
    """Two late nodes collide with one of 1,000 nodes (6,000 endpoints) and with each
    other: each collision is reported once, naming the first endpoint it collides with
    (a wildcard collides with every host on its port, localhost is 127.0.0.1)."""
    text = system_text(1000) + LATE_NODES
    with pytest.raises(ConfigError) as caught:
        parse_system(text, check_files=False)
    assert caught.value.problems == [
        "nodes.late.endpoints.pub: tcp://10.3.49.1:7100 is already used by "
        "nodes.n00799.endpoints.pub",
        "nodes.late.endpoints.shell: tcp://*:7101 is already used by "
        "nodes.n00000.endpoints.shell (as tcp://10.0.0.1:7101)",
        "nodes.later.endpoints.shell: tcp://10.200.0.9:7101 is already used by "
        "nodes.late.endpoints.shell (as tcp://*:7101)",
        "nodes.later.endpoints.control: tcp://LOCALHOST:9002 is already used by "
        "nodes.late.endpoints.control (as tcp://127.0.0.1:9002)",
        "nodes.later.endpoints.stdin: ipc:///run/rovbus/late is already used by "
        "nodes.late.endpoints.stdin",
    ]
