"""A container in ``docker inspect``'s shape: every key Docker prints, in Docker's order.

The words: the service says what it knows of a container (``to_docker`` in
``service.py``: its id, state, mounts, limits, networks); ``complete`` lays that out as
Docker 28.2 does and fills every key the engine has nothing to say about with the
value Docker prints for a container that does not use the feature (``"IpcMode":
"private"``, ``"BlkioWeightDevice": []``, ``"MemorySwappiness": null``…). The key
order and which keys are left out when empty (Go's ``omitempty``) follow moby's
``api/types/container`` at v28.2.2 (``container.go``, ``hostconfig.go``, ``config.go``,
``network_settings.go``); the keys are those of the Engine API v1.50's
``ContainerInspectResponse`` (``tests/unit/docker_inspect_keys.json``).

    doc = complete({"Id": cid, "State": {...}, "HostConfig": {"Memory": 1 << 20}, ...})
    doc["HostConfig"]["CgroupnsMode"]   # "private"
    list(doc)[:3]                       # ["Id", "Created", "Path"]

Keys the service gives that Docker has no slot for stay, after Docker's keys.
"""

from __future__ import annotations

import copy

from engine.runtime.spec import MASKED_PATHS, READONLY_PATHS

OMIT = object()  # Go's omitempty: shown only when the service gives a value that is not empty

STATE = [("Status", "created"), ("Running", False), ("Paused", False), ("Restarting", False),
         ("OOMKilled", False), ("Dead", False), ("Pid", 0), ("ExitCode", 0), ("Error", ""),
         ("StartedAt", "0001-01-01T00:00:00Z"), ("FinishedAt", "0001-01-01T00:00:00Z"), ("Health", OMIT)]

HOST_CONFIG = [
    ("Binds", None), ("ContainerIDFile", ""), ("LogConfig", {"Type": "json-file", "Config": {}}),
    ("NetworkMode", "bridge"), ("PortBindings", {}), ("RestartPolicy", {"Name": "no", "MaximumRetryCount": 0}),
    ("AutoRemove", False), ("VolumeDriver", ""), ("VolumesFrom", None), ("ConsoleSize", [0, 0]),
    ("Annotations", OMIT), ("CapAdd", None), ("CapDrop", None), ("CgroupnsMode", "private"), ("Dns", []),
    ("DnsOptions", []), ("DnsSearch", []), ("ExtraHosts", None), ("GroupAdd", None), ("IpcMode", "private"),
    ("Cgroup", ""), ("Links", None), ("OomScoreAdj", 0), ("PidMode", ""), ("Privileged", False),
    ("PublishAllPorts", False), ("ReadonlyRootfs", False), ("SecurityOpt", None), ("StorageOpt", OMIT),
    ("Tmpfs", OMIT), ("UTSMode", ""), ("UsernsMode", ""), ("ShmSize", 67108864), ("Sysctls", OMIT),
    ("Runtime", OMIT), ("Isolation", ""),
    # Resources, embedded in HostConfig
    ("CpuShares", 0), ("Memory", 0), ("NanoCpus", 0), ("CgroupParent", ""), ("BlkioWeight", 0),
    ("BlkioWeightDevice", []), ("BlkioDeviceReadBps", []), ("BlkioDeviceWriteBps", []),
    ("BlkioDeviceReadIOps", []), ("BlkioDeviceWriteIOps", []), ("CpuPeriod", 0), ("CpuQuota", 0),
    ("CpuRealtimePeriod", 0), ("CpuRealtimeRuntime", 0), ("CpusetCpus", ""), ("CpusetMems", ""),
    ("Devices", []), ("DeviceCgroupRules", None), ("DeviceRequests", None), ("KernelMemory", OMIT),
    ("KernelMemoryTCP", OMIT), ("MemoryReservation", 0), ("MemorySwap", 0), ("MemorySwappiness", None),
    ("OomKillDisable", None), ("PidsLimit", None), ("Ulimits", []), ("CpuCount", 0), ("CpuPercent", 0),
    ("IOMaximumIOps", 0), ("IOMaximumBandwidth", 0),
    ("Mounts", OMIT), ("MaskedPaths", list(MASKED_PATHS)), ("ReadonlyPaths", list(READONLY_PATHS)),
    ("Init", OMIT),
]

CONFIG = [
    ("Hostname", ""), ("Domainname", ""), ("User", ""), ("AttachStdin", False), ("AttachStdout", True),
    ("AttachStderr", True), ("ExposedPorts", OMIT), ("Tty", False), ("OpenStdin", False), ("StdinOnce", False),
    ("Env", None), ("Cmd", None), ("Healthcheck", OMIT), ("ArgsEscaped", OMIT), ("Image", ""), ("Volumes", None),
    ("WorkingDir", ""), ("Entrypoint", None), ("NetworkDisabled", OMIT), ("MacAddress", OMIT), ("OnBuild", None),
    ("Labels", {}), ("StopSignal", OMIT), ("StopTimeout", OMIT), ("Shell", OMIT),
]

ENDPOINT = [
    ("IPAMConfig", None), ("Links", None), ("Aliases", None), ("MacAddress", ""), ("DriverOpts", None),
    ("GwPriority", 0), ("NetworkID", ""), ("EndpointID", ""), ("Gateway", ""), ("IPAddress", ""),
    ("IPPrefixLen", 0), ("IPv6Gateway", ""), ("GlobalIPv6Address", ""), ("GlobalIPv6PrefixLen", 0),
    ("DNSNames", None),
]

NETWORK_SETTINGS = [
    ("Bridge", ""), ("SandboxID", ""), ("SandboxKey", ""), ("Ports", {}), ("HairpinMode", False),
    ("LinkLocalIPv6Address", ""), ("LinkLocalIPv6PrefixLen", 0), ("SecondaryIPAddresses", None),
    ("SecondaryIPv6Addresses", None), ("EndpointID", ""), ("Gateway", ""), ("GlobalIPv6Address", ""),
    ("GlobalIPv6PrefixLen", 0), ("IPAddress", ""), ("IPPrefixLen", 0), ("IPv6Gateway", ""), ("MacAddress", ""),
    ("Networks", {}),
]

GRAPH_DRIVER = [("Data", {}), ("Name", "overlay2")]

CONTAINER = [
    ("Id", ""), ("Created", ""), ("Path", ""), ("Args", []), ("State", STATE), ("Image", ""),
    ("ResolvConfPath", ""), ("HostnamePath", ""), ("HostsPath", ""), ("LogPath", ""), ("Name", ""),
    ("RestartCount", 0), ("Driver", "overlay2"), ("Platform", "linux"), ("MountLabel", ""), ("ProcessLabel", ""),
    ("AppArmorProfile", ""), ("ExecIDs", None), ("HostConfig", HOST_CONFIG), ("GraphDriver", GRAPH_DRIVER),
    ("SizeRw", OMIT), ("SizeRootFs", OMIT), ("Mounts", []), ("Config", CONFIG),
    ("NetworkSettings", NETWORK_SETTINGS), ("ImageManifestDescriptor", OMIT),
]


def _empty(value) -> bool:
    return value is None or value is False or (type(value) is int and value == 0) or value in ("", [], {})


def _lay_out(given: dict, template: list) -> dict:
    out = {}
    for key, default in template:
        if key in given:
            value = given[key]
            if default is OMIT and _empty(value):
                continue
            if isinstance(default, list) and default and isinstance(default[0], tuple) and isinstance(value, dict):
                value = _lay_out(value, default)
            out[key] = value
        elif default is OMIT:
            continue
        elif isinstance(default, list) and default and isinstance(default[0], tuple):
            out[key] = _lay_out({}, default)
        else:
            out[key] = copy.deepcopy(default)
    for key, value in given.items():  # what Docker has no slot for keeps its place after Docker's keys
        if key not in out and not any(key == k for k, _ in template):
            out[key] = value
    return out


def complete(doc: dict, runtime: str = "runc") -> dict:
    """``doc`` (what the service knows of a container) with every key of Docker's inspect, in its order;
    ``runtime``: the OCI runtime that runs it (runc, crun)."""
    doc = dict(doc)
    host = dict(doc.get("HostConfig") or {})
    host.setdefault("Runtime", runtime)
    if host.get("Privileged"):  # a privileged container has nothing masked, as Docker's
        host.setdefault("MaskedPaths", None)
        host.setdefault("ReadonlyPaths", None)
    doc["HostConfig"] = host
    out = _lay_out(doc, CONTAINER)
    networks = out["NetworkSettings"].get("Networks") or {}
    out["NetworkSettings"]["Networks"] = {name: _lay_out(ep or {}, ENDPOINT) for name, ep in networks.items()}
    return out
