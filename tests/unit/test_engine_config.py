"""EngineConfig.load: one function reads the root, the environment and settings.json."""

from __future__ import annotations

import json

import pytest

from engine.config import EngineConfig
from engine.errors import InvalidArgument


def test_the_environment_given_is_what_is_read_not_the_process_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("BERTH_FIREWALL_TABLE", "from_the_process")
    config = EngineConfig.load(env={"BERTH_ROOT": str(tmp_path), "BERTH_FIREWALL_TABLE": "berth_cfg",
                                    "BERTH_ADDRESS_POOLS": "10.250.0.0/16/24", "BERTH_IP_FORWARD": "0",
                                    "BERTH_CGROUP_PARENT": "/berth-cfg", "BERTH_DEFAULT_NETWORK": "none",
                                    "BERTH_EVENTS_SEGMENTS": "3"})
    assert config.root == tmp_path and config.cgroup_parent == "/berth-cfg" and config.default_network == "none"
    assert config.network.firewall_table == "berth_cfg" and config.network.enable_ip_forward is False
    assert [(p.base, p.size) for p in config.network.address_pools] == [("10.250.0.0/16", 24)]
    assert config.journal.segments == 3
    assert EngineConfig.load(tmp_path, env={}).network.firewall_table == "berth"  # the default, not the process's


def test_registry_settings_come_from_settings_json_and_engine_settings_are_refused_there(tmp_path):
    (tmp_path / "settings.json").write_text(json.dumps({"insecure_registries": ["registry.lan:5000"],
                                                        "max_layer_entries": 10}))
    config = EngineConfig.load(tmp_path, env={})
    assert config.images.insecure_registries == ["registry.lan:5000"] and config.images.max_layer_entries == 10
    (tmp_path / "settings.json").write_text(json.dumps({"firewall_table": "elsewhere"}))
    with pytest.raises(InvalidArgument, match="BERTH_FIREWALL_TABLE"):
        EngineConfig.load(tmp_path, env={})
    (tmp_path / "settings.json").write_text(json.dumps({"no_such_setting": 1}))
    with pytest.raises(InvalidArgument, match="unknown settings"):
        EngineConfig.load(tmp_path, env={})


def test_the_config_is_frozen(tmp_path):
    config = EngineConfig.load(tmp_path, env={})
    with pytest.raises(AttributeError):
        config.cgroup_parent = "/elsewhere"
