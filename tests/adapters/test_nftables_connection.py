"""The nftables adapter's connection target (an OpenC2 ipv4_connection, LS §3.4.1.10):
one direction of a five-tuple, an absent part meaning any, at the points guarding the
addresses that lie in the city. (Accepted by a real kernel: tests/test_e2e_openc2.py.)"""

from __future__ import annotations

import pytest
from netlab import INVENTORY

from adapters.base import PermanentAdapterError
from adapters.network.ruleset import add_commands, build, render
from adapters.network.topology import FLOW, resolve

TOPOLOGY = INVENTORY.network_topology(lab_gateway_netns="bt-test-gw")
ENG_WS, TSC1 = "198.18.40.33", "198.18.10.11"


def flow(**tuple_: object) -> dict[str, object]:
    return {"ipv4_connection": tuple_}


def test_a_connection_resolves_to_its_two_ends_and_the_points_guarding_their_zones():
    selection = resolve(TOPOLOGY, "deny", flow(src_addr=ENG_WS, dst_addr=TSC1, dst_port=502), {})
    assert selection.kind == FLOW
    assert [list(map(str, side)) for side in selection.sides] == [[f"{ENG_WS}/32"], [f"{TSC1}/32"]]
    assert [p.id for p in selection.points] == ["city-gw"]
    assert "municipal-it, traffic" in selection.summary


def test_one_end_may_lie_outside_the_city_when_the_other_is_inside():
    selection = resolve(TOPOLOGY, "deny", flow(src_addr="203.0.113.9", dst_addr=ENG_WS), {})
    assert selection.summary.endswith("in zone(s) municipal-it")


@pytest.mark.parametrize(
    ("target", "args", "says"),
    [
        (flow(protocol="tcp", dst_port=23), {}, "names no address"),
        (flow(src_addr="203.0.113.9"), {}, "neither end"),
        (flow(src_addr=ENG_WS, protocol="icmp", dst_port=1), {}, "icmp has no ports"),
        (flow(src_addr=ENG_WS, protocol="gre"), {}, "protocol"),
        (flow(src_addr=ENG_WS, dst_port=70000), {}, "port number"),
        (flow(src_addr=ENG_WS, colour="red"), {}, "unknown"),
        (flow(src_addr="2001:db8::1"), {}, "IPv6"),
        (flow(src_addr=ENG_WS), {"allow": ["soc-mgmt"]}, "does not apply"),
    ],
)
def test_connections_outside_the_contract_are_refused(target, args, says):
    with pytest.raises(PermanentAdapterError, match=says):
        resolve(TOPOLOGY, "deny", target, args)


def test_the_rule_drops_one_direction_of_that_service_only():
    selection = resolve(
        TOPOLOGY, "deny", flow(src_addr=ENG_WS, dst_addr=TSC1, protocol="tcp", dst_port=502), {}
    )
    step = build(selection, "inc-1:deny-flow:1").at(["forward"])
    (rule,) = [line for line in render(step) if line.startswith("add rule")]
    assert f"ip saddr @{step.tag}_s4 ip daddr @{step.tag}_p4 tcp dport 502 counter drop" in rule
    expr = next(c["add"]["rule"]["expr"] for c in add_commands(step) if "rule" in c.get("add", {}))
    assert expr[2] == {
        "match": {
            "op": "==",
            "left": {"payload": {"protocol": "tcp", "field": "dport"}},
            "right": 502,
        }
    }


def test_a_protocol_alone_is_matched_and_a_port_alone_is_any_transport():
    only_udp = build(resolve(TOPOLOGY, "deny", flow(src_addr=ENG_WS, protocol="udp"), {}), "k1")
    any_port = build(resolve(TOPOLOGY, "deny", flow(dst_addr=ENG_WS, dst_port=22), {}), "k2")
    assert any("meta l4proto udp" in line for line in render(only_udp.at(["forward"])))
    rendered = render(any_port.at(["forward"]))
    assert any(f"ip daddr @{any_port.tag}_p4 th dport 22" in line for line in rendered)
    assert not any("saddr" in line for line in rendered if line.startswith("add rule"))
