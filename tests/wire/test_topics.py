"""Topic strings: builders, parser, names, and prefix selection."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rovbus.errors import EnvelopeError
from rovbus.wire.topics import (
    Topic,
    batch_topic,
    can_topic,
    check_name,
    heartbeat_topic,
    log_topic,
    parse_topic,
    signal_topic,
    status_topic,
)

NAMES = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="/"),
    min_size=1,
    max_size=12,
)


def test_builders_give_the_documented_shapes() -> None:
    assert can_topic("propulsion", "can0", 0x0F3, False) == "propulsion/can/can0/0F3"
    assert can_topic("nav", "can1", 0x18FEF100, True) == "nav/can/can1/18FEF100"
    assert can_topic("nav", "can1", 0x5, True) == "nav/can/can1/00000005"
    assert batch_topic("nav", "can1") == "nav/can/can1"
    assert heartbeat_topic("nav") == "nav/hb"
    assert status_topic("nav") == "nav/status"
    assert log_topic("nav") == "nav/log"
    assert signal_topic("nav", "can1", "Heading") == "nav/sig/can1/Heading"


@pytest.mark.parametrize(
    ("topic", "parsed"),
    [
        ("propulsion/can/can0/0F3", Topic("propulsion", "can", "can0", 0x0F3, False)),
        ("nav/can/can1/18FEF100", Topic("nav", "can", "can1", 0x18FEF100, True)),
        ("nav/can/can1/00000005", Topic("nav", "can", "can1", 5, True)),
        ("nav/can/can1", Topic("nav", "can", "can1")),
        ("nav/hb", Topic("nav", "hb")),
        ("nav/status", Topic("nav", "status")),
        ("nav/helm", Topic("nav", "helm")),
        ("nav/log", Topic("nav", "log")),
        ("nav/sig/can1/Heading", Topic("nav", "sig", "can1", name="Heading")),
    ],
)
def test_parse_and_str_round_trip(topic: str, parsed: Topic) -> None:
    assert parse_topic(topic) == parsed
    assert parse_topic(topic.encode()) == parsed
    assert str(parsed) == topic


@given(NAMES, NAMES, st.booleans(), st.data())
def test_any_can_topic_parses_back(node: str, bus: str, ext: bool, data: st.DataObject) -> None:
    aid = data.draw(st.integers(0, 0x1FFFFFFF if ext else 0x7FF))
    topic = can_topic(node, bus, aid, ext)
    assert parse_topic(topic) == Topic(node, "can", bus, aid, ext)
    assert str(parse_topic(topic)) == topic
    assert topic.startswith(batch_topic(node, bus) + "/")


@given(NAMES, NAMES, NAMES)
def test_any_signal_topic_parses_back(node: str, bus: str, message: str) -> None:
    topic = signal_topic(node, bus, message)
    assert parse_topic(topic) == Topic(node, "sig", bus, name=message)


def test_a_hex_prefix_selects_an_id_range_and_a_slash_stops_at_the_bus() -> None:
    prefix = "propulsion/can/can0/0F"
    inside = [can_topic("propulsion", "can0", i, False) for i in range(0x0F0, 0x100)]
    outside = [can_topic("propulsion", "can0", i, False) for i in (0x0EF, 0x100, 0x1F3)]
    assert all(t.startswith(prefix) for t in inside)
    assert not any(t.startswith(prefix) for t in outside)
    assert not can_topic("nav", "can10", 1, False).startswith(batch_topic("nav", "can1") + "/")
    # 11-bit and 29-bit topics of one bus never share a full-ID prefix
    assert not can_topic("n", "b", 0x123, True).startswith(can_topic("n", "b", 0x123, False))


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("", "must not be empty"),
        ("a/b", "must not contain '/'"),
        ("can 0", "whitespace ' '"),
        ("can\t0", "whitespace '\\t'"),
        ("nav\x00", "non-printable or non-ASCII"),
        ("propulsión", "non-printable or non-ASCII"),
    ],
)
def test_check_name_says_which_name_is_wrong_and_why(name: str, says: str) -> None:
    with pytest.raises(ValueError, match="bus name") as info:
        check_name(name, "bus")
    assert says in str(info.value)
    assert check_name("can0", "bus") == "can0"


def test_builders_check_names_and_id_ranges() -> None:
    with pytest.raises(ValueError, match="node name 'a b'"):
        heartbeat_topic("a b")
    with pytest.raises(ValueError, match="bus name 'can/0'"):
        can_topic("nav", "can/0", 1, False)
    with pytest.raises(ValueError, match="signal message name ''"):
        signal_topic("nav", "can0", "")
    with pytest.raises(ValueError, match="11-bit CAN ID 0x800"):
        can_topic("nav", "can0", 0x800, False)
    with pytest.raises(ValueError, match="29-bit CAN ID 0x20000000"):
        can_topic("nav", "can0", 0x20000000, True)
    with pytest.raises(ValueError, match="node name ''"):
        status_topic("")
    with pytest.raises(ValueError, match="node name"):
        log_topic("x/y")


@pytest.mark.parametrize(
    ("topic", "says"),
    [
        ("nav", "no '/'"),
        ("", "no '/'"),
        ("/hb", "node name '' must not be empty"),
        ("nav/", "unknown kind ''"),
        ("nav/video", "unknown kind 'video'"),
        ("nav/hb/x", "no level after 'hb'"),
        ("nav/status/", "no level after 'status'"),
        ("nav/can", "expected <node>/can/<bus>[/<ID>]"),
        ("nav/can//0F3", "bus name '' must not be empty"),
        ("nav/can/can0/0f3", "not 3 or 8 upper-case hex digits"),
        ("nav/can/can0/F3", "not 3 or 8 upper-case hex digits"),
        ("nav/can/can0/", "not 3 or 8 upper-case hex digits"),
        ("nav/can/can0/800", "does not fit 11 bits"),
        ("nav/can/can0/20000000", "does not fit 29 bits"),
        ("nav/can/can0/0F3/x", "expected <node>/can/<bus>[/<ID>]"),
        ("nav/sig/can0", "expected <node>/sig/<bus>/<message>"),
        ("nav/sig/can0/a b", "signal message name 'a b'"),
        ("na v/hb", "node name 'na v'"),
    ],
)
def test_bad_topics_say_what_is_wrong(topic: str, says: str) -> None:
    with pytest.raises(EnvelopeError) as info:
        parse_topic(topic)
    assert says in str(info.value)


def test_non_ascii_topic_bytes_are_an_envelope_error() -> None:
    with pytest.raises(EnvelopeError, match="not ASCII"):
        parse_topic(b"nav/\xffhb")


@given(st.text(max_size=40) | st.text(st.sampled_from("/abcF0123hbcansig"), max_size=30))
def test_any_text_parses_or_raises_envelope_error_only(topic: str) -> None:
    try:
        parsed = parse_topic(topic)
    except EnvelopeError:
        return
    assert str(parsed) == topic


@given(st.binary(max_size=40))
def test_any_bytes_parse_or_raise_envelope_error_only(topic: bytes) -> None:
    with contextlib.suppress(EnvelopeError):
        parse_topic(topic)
