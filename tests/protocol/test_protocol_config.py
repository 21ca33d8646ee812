"""Config presets equal memberlist's, and validation names the field."""

from __future__ import annotations

import dataclasses

import pytest

from swimguard.config import Config

LAN = dict(tcp_timeout=10.0, indirect_checks=3, retransmit_mult=4, suspicion_mult=4,
           suspicion_max_timeout_mult=6, push_pull_interval=30.0, probe_timeout=0.5,
           probe_interval=1.0, disable_tcp_pings=False, awareness_max_multiplier=8,
           gossip_nodes=3, gossip_interval=0.2, gossip_to_the_dead_time=30.0,
           gossip_verify_incoming=True, gossip_verify_outgoing=True, enable_compression=True,
           udp_buffer_size=1400, dead_node_reclaim_time=0.0, protocol_version=2)
WAN = {**LAN, "tcp_timeout": 30.0, "suspicion_mult": 6, "push_pull_interval": 60.0,
       "probe_timeout": 3.0, "probe_interval": 5.0, "gossip_nodes": 4, "gossip_interval": 0.5,
       "gossip_to_the_dead_time": 60.0}
LOCAL = {**LAN, "tcp_timeout": 1.0, "indirect_checks": 1, "retransmit_mult": 2,
         "suspicion_mult": 3, "push_pull_interval": 15.0, "probe_timeout": 0.2,
         "gossip_interval": 0.1, "gossip_to_the_dead_time": 15.0}


@pytest.mark.parametrize(("preset", "expected"),
                         [(Config.lan, LAN), (Config.wan, WAN), (Config.local, LOCAL)])
def test_presets_match_memberlist(preset: object, expected: dict[str, object]) -> None:
    cfg = preset()  # type: ignore[operator]
    for key, value in expected.items():
        assert getattr(cfg, key) == value, key
    assert cfg.vsn == bytes((1, 5, 2, 2, 5, 5))
    assert cfg.lifeguard
    assert cfg.loop_lag_health


def test_overrides_and_frozen() -> None:
    cfg = Config.wan(probe_interval=7.0)
    assert cfg.probe_interval == 7.0
    assert cfg.suspicion_mult == 6
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.probe_interval = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        Config(1.0)  # type: ignore[misc]


def test_swim_switches_everything_off() -> None:
    cfg = Config.swim(Config.local())
    assert not (cfg.lha_probe)
    assert not (cfg.lha_suspicion)
    assert not (cfg.buddy_system)
    assert not (cfg.loop_lag_health)
    assert cfg.probe_timeout == 0.2


@pytest.mark.parametrize(
    ("field", "value"),
    [("probe_interval", 0), ("probe_interval", -1.0), ("probe_timeout", float("nan")),
     ("tcp_timeout", "10"), ("indirect_checks", -1), ("indirect_checks", 1.5),
     ("protocol_version", 0), ("protocol_version", 6), ("delegate_protocol_version", 1),
     ("udp_buffer_size", 100), ("awareness_max_multiplier", 0), ("gossip_interval", -0.1),
     ("lha_probe", 1), ("probe_timeout", 2.0), ("max_inbound_streams", 0),
     ("retransmit_mult", True)],
)
def test_validation_names_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"Config.{field}"):
        Config(**{field: value})  # type: ignore[arg-type]
