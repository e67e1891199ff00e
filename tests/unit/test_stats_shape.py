"""Stats samples in the Docker Engine API's shape: a Docker client computes the same CPU % from
``cpu_stats`` and ``precpu_stats`` as the sampler did."""

from __future__ import annotations

import os

from engine.containers.model import StatsSample
from engine.containers.stats import docker_stats
from engine.runtime import stats as counters
from engine.runtime.cgroups import CgroupStats


def sample(cpu_ns: int, system_ns: int, read: str) -> StatsSample:
    return StatsSample(id="a" * 64, name="web", cpu_percent=0.0, memory_usage=5 << 20, memory_limit=64 << 20,
                       memory_percent=7.81, pids=3, block_read=4096, block_write=8192, net_rx=100, net_tx=200,
                       networks={"eth0": {"rx_bytes": 100, "tx_bytes": 200}}, read=read, cpu_usage_ns=cpu_ns,
                       system_cpu_ns=system_ns)


def test_a_docker_client_computes_the_samplers_cpu_percent_from_the_api_shape():
    before, after = sample(1_000, 10_000, "t0"), sample(6_000, 30_000, "t1")
    doc = docker_stats(after, before)
    # the Docker CLI's calculateCPUPercentUnix
    cpu_delta = doc["cpu_stats"]["cpu_usage"]["total_usage"] - doc["precpu_stats"]["cpu_usage"]["total_usage"]
    system_delta = doc["cpu_stats"]["system_cpu_usage"] - doc["precpu_stats"]["system_cpu_usage"]
    docker_percent = cpu_delta / system_delta * doc["cpu_stats"]["online_cpus"] * 100.0
    mine = counters.cpu_percent(counters.Reading(CgroupStats(cpu_usage_ns=1_000), 10_000),
                                counters.Reading(CgroupStats(cpu_usage_ns=6_000), 30_000))
    assert docker_percent == mine == 5_000 / 20_000 * (os.cpu_count() or 1) * 100
    assert doc["name"] == "/web" and doc["preread"] == "t0" and doc["read"] == "t1"
    assert doc["memory_stats"] == {"usage": 5 << 20, "limit": 64 << 20, "stats": {}}
    assert doc["pids_stats"] == {"current": 3} and doc["networks"]["eth0"]["tx_bytes"] == 200
    assert [e["value"] for e in doc["blkio_stats"]["io_service_bytes_recursive"]] == [4096, 8192]


def test_the_first_sample_has_an_empty_precpu_as_dockers():
    doc = docker_stats(sample(1, 2, "t"))
    assert doc["precpu_stats"]["cpu_usage"]["total_usage"] == 0 and "system_cpu_usage" not in doc["precpu_stats"]
    assert doc["preread"] == "0001-01-01T00:00:00Z"
