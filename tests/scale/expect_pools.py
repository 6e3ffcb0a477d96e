#!/usr/bin/python3
"""expect_pools.py — the oracle: what the controller must hold once kavi
has applied a recording, computed from the recording alone (it shares no
code with kavi).

    expect_pools.py STREAM.ndjson [MORE.ndjson ...] > expected.json

Prints the tests/kit expectation format (tests/kit/kit.h):
{"virtualservice": [...], "vsvip": [...], "l4policyset": [...],
 "healthmonitor": [...], "pool": {name: ["<node> <addr>:<nodePort> enabled|disabled"]}}

The rules, DESIGN.md §3 in NodePort mode, clusterName "kavi", no
nodeSelectorLabels, ipFamily V4 (the kit's configuration):

  a node is a candidate unless it carries
  node.kubernetes.io/exclude-from-external-load-balancers with a value other
  than "false", or has no InternalIP;

  ETP Cluster: every candidate, enabled;
  ETP Local: a candidate with a ready endpoint of the port on it is enabled;
    with none ready but one serving and terminating, disabled; else absent;
  a candidate being deleted (deletionTimestamp) or tainted
  ToBeDeletedByClusterAutoscaler that would be present is disabled.

Endpoint conditions left out count as ready and serving, not terminating.
A Local LoadBalancer Service with healthCheckNodePort also gets the health
monitor "<vs>-hc". Out of its scope (it says what the kit's default
configuration gives): nodeSelectorLabels, tenants, deleteConfig, IPv6, CNI
node addresses. Checked against every @expect of tests/data/scenarios
that uses none of those: all agree. Names: "kavi--<namespace>-<service>" for the virtual
service, its VsVip and L4 policy set; "<vs>-<protocol>-<port>" per pool.
"""
import json
import sys

EXCLUDE = "node.kubernetes.io/exclude-from-external-load-balancers"


def read_state(paths):
    """The objects that exist at the end of the streams, by kind then key."""
    state = {}
    for path in paths:
        with open(path) as f:
            for line in f:
                if not line.strip():
                    continue
                event = json.loads(line)
                obj = event["object"]
                meta = obj["metadata"]
                key = (meta.get("namespace", ""), meta["name"])
                objects = state.setdefault(obj["kind"], {})
                if event["type"] == "DELETED":
                    objects.pop(key, None)
                else:
                    objects[key] = obj
    return state


def node_address(node):
    """The node's InternalIP (IPv4), or None when it is no candidate."""
    labels = node["metadata"].get("labels", {})
    if EXCLUDE in labels and labels[EXCLUDE] != "false":
        return None
    for a in node.get("status", {}).get("addresses", []):
        if a["type"] == "InternalIP" and ":" not in a["address"]:
            return a["address"]
    return None


def node_draining(node):
    taints = node.get("spec", {}).get("taints", [])
    return "deletionTimestamp" in node["metadata"] or any(
        t.get("key") == "ToBeDeletedByClusterAutoscaler" for t in taints)


def local_verdicts(slices, port):
    """node name -> "enabled" | "disabled" for one Service port, ETP Local."""
    best = {}
    rank = {"disabled": 1, "enabled": 2}
    for s in slices:
        if s.get("addressType") != "IPv4":
            continue
        if not any(p.get("name", "") == port.get("name", "")
                   and p.get("protocol", "TCP") == port.get("protocol", "TCP")
                   for p in s.get("ports") or []):
            continue
        for e in s.get("endpoints") or []:
            c = e.get("conditions", {})
            if c.get("ready", True):
                verdict = "enabled"
            elif c.get("serving", True) and c.get("terminating", False):
                verdict = "disabled"
            else:
                continue
            node = e.get("nodeName")
            if node and rank[verdict] > rank.get(best.get(node), 0):
                best[node] = verdict
    return best


def expected(state):
    nodes = state.get("Node", {})
    slices_of = {}
    for (ns, _), s in state.get("EndpointSlice", {}).items():
        owner = s["metadata"].get("labels", {}).get("kubernetes.io/service-name")
        if owner:
            slices_of.setdefault((ns, owner), []).append(s)
    view = {"virtualservice": [], "vsvip": [], "l4policyset": [], "healthmonitor": [],
            "pool": {}}
    for (ns, name), svc in sorted(state.get("Service", {}).items()):
        spec = svc["spec"]
        if spec.get("type") != "LoadBalancer" or spec.get("loadBalancerClass") not in (
                None, "ako.vmware.com/avi-lb"):
            continue
        vs = "kavi--%s-%s" % (ns, name)
        local = spec.get("externalTrafficPolicy") == "Local"
        for kind in ("virtualservice", "vsvip", "l4policyset"):
            view[kind].append(vs)
        if local and spec.get("healthCheckNodePort"):
            view["healthmonitor"].append(vs + "-hc")
        for port in spec["ports"]:
            servers = []
            verdicts = local_verdicts(slices_of.get((ns, name), []), port) if local else None
            for (_, node_name), node in sorted(nodes.items()):
                address = node_address(node)
                if address is None or not port.get("nodePort"):
                    continue
                verdict = verdicts.get(node_name) if local else "enabled"
                if verdict is None:
                    continue
                if node_draining(node):
                    verdict = "disabled"
                servers.append("%s %s:%d %s" % (node_name, address, port["nodePort"], verdict))
            view["pool"]["%s-%s-%d" % (vs, port.get("protocol", "TCP"), port["port"])] = \
                sorted(servers)
    for kind in ("virtualservice", "vsvip", "l4policyset", "healthmonitor"):
        view[kind].sort()
        if not view[kind]:
            del view[kind]
    if not view["pool"]:
        del view["pool"]
    return view


def main():
    if len(sys.argv) < 2:
        sys.stderr.write("usage: expect_pools.py STREAM.ndjson [MORE.ndjson ...]\n")
        return 2
    json.dump(expected(read_state(sys.argv[1:])), sys.stdout, sort_keys=True,
              separators=(",", ":"))
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
