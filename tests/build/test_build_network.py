"""RUN steps on the default bridge network: a real sandbox with an address while the
step runs, nothing of it in the layer, and nothing of it left on the host after."""

from __future__ import annotations

import secrets

import pytest

from engine.build.builder import Builder
from engine.build.model import BuildOptions
from engine.build.runner import RuntimeStepRunner
from engine.network.service import Networks
from engine.network.settings import NetworkSettings
from tests.build.conftest import _read
from tests.network.conftest import owned_census, wait_until

pytestmark = pytest.mark.root

PROBE = ('FROM scratch\nCOPY busybox /bin/busybox\n'
         'RUN ["/bin/busybox", "sh", "-c", "/bin/busybox ip -4 -o addr > /addr; '
         '/bin/busybox cat /etc/hosts > /hosts-seen; /bin/busybox hostname > /hostname-seen"]\n')


@pytest.fixture
def nets(svc):
    nets = Networks(svc.root, NetworkSettings.for_tests(f"b{secrets.token_hex(3)}"))
    before = owned_census(nets)
    yield nets
    nets.destroy_everything()
    # counted by owner (the root's tagged links, its table, namespaces under it), and waited for:
    # a namespace, and the veth in it, goes asynchronously after its last user
    wait_until(lambda: owned_census(nets) == before, timeout=10,
               what=f"a bridged build step to leave nothing on the host: {before} vs {owned_census(nets)}")
    nets.close()


def test_a_bridged_run_step_has_an_address_on_the_default_bridge_and_leaves_no_sandbox(svc, nets, context):
    runner = RuntimeStepRunner(svc.root, networks=nets)
    Builder(svc, runner=runner).build(BuildOptions(context=context(PROBE), tags=["bridged:1"], network="bridge"))
    addr = _read(svc, "bridged:1", "/addr")
    assert "eth0" in addr and "inet 10.23" in addr, addr
    hostname = _read(svc, "bridged:1", "/hostname-seen").strip()
    assert hostname and hostname in _read(svc, "bridged:1", "/hosts-seen")
    # the network files were mounted for the step only: the layer has no /etc of its own
    from engine.build.rootfs import StackView

    view = StackView(svc.layer_stack("bridged:1"))
    assert _read(svc, "bridged:1", "/etc/hosts") == "" and view.lookup("/etc") is None, "network files leaked into the layer"
    assert nets.state.all("SELECT container_id FROM sandboxes") == []


def test_a_run_step_with_network_none_sees_only_loopback(svc, nets, context):
    runner = RuntimeStepRunner(svc.root, networks=nets)
    Builder(svc, runner=runner).build(BuildOptions(context=context(PROBE), tags=["isolated:1"], network="none"))
    addr = _read(svc, "isolated:1", "/addr")
    assert "eth0" not in addr and "lo" in addr, addr
