"""Container networking, as Docker's bridge driver does it: bridges, veth pairs, addresses, names,
published ports and isolation, with netlink (pyroute2) and an nftables table of Berth's own.

    from engine.network.service import Networks
    nets = Networks(root)
    path = nets.create_sandbox(cid)                 # a network namespace file, lo up
    nets.attach(cid, path, "bridge")                # eth0 on the default network
    nets.publish(cid, ["8080:80"])                  # 127.0.0.1:8080 and every host address
    nets.remove_sandbox(cid)                        # everything of it goes

Modules: ``service`` (the facade), ``netns`` (namespace files), ``links`` (bridges and veths),
``ipam`` (subnets and addresses), ``ports`` (``-p`` specs), ``firewall`` (the nftables table),
``names`` (hosts and resolv.conf files), ``state`` (the records), ``model`` and ``settings``.
"""
