#!/usr/bin/python3
"""gen_cluster.py — a seeded, synthetic Kubernetes cluster as a watch-event
recording (the replay format: one {"type","object"} JSON line per event).

    gen_cluster.py --seed 1 --nodes 500 --services 2000 --endpoints 6000 \
                   --out base.ndjson [--churn-out churn.ndjson] \
                   [--churn rolling,drain,nodes,noop] [--churn-parts 3]
                   [--local-fraction 0.5]

The base section holds, in this order: Namespaces, Nodes, LoadBalancer
Services and one EndpointSlice per Service. What it contains on purpose,
because each is a row of DESIGN.md §3's table:

  * nodes labelled node.kubernetes.io/exclude-from-external-load-balancers
    ("true" excludes, "false" keeps), nodes being deleted
    (deletionTimestamp), nodes tainted ToBeDeletedByClusterAutoscaler, and a
    node with no InternalIP;
  * Services with externalTrafficPolicy Local (healthCheckNodePort set) or
    Cluster, some with two named ports, a few with no endpoints at all;
  * endpoints ready, not ready, terminating but serving, terminating and
    not serving, on random nodes (some of them excluded or being deleted).

The churn section (--churn-out, else appended to --out) is a list of named
steps: "rolling" (a 100-replica Deployment over 50 nodes rolled 25 pods at
a time: surge not ready, surge ready and old terminating, old gone),
"drain" (the busiest node's pods turn terminating then move elsewhere; the
node is then deleted), "nodes" (nodes added, nodes marked deleting then
deleted), "noop" (resourceVersion-only MODIFIED events that change nothing
a pool can see). The same arguments always give the same bytes.
"""
import argparse
import json
import random
import sys

EXCLUDE = "node.kubernetes.io/exclude-from-external-load-balancers"


class Stream:
    def __init__(self, out):
        self.out = out
        self.rv = 1000

    def emit(self, kind, obj):
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self.out.write(json.dumps({"type": kind, "object": obj}, separators=(",", ":")))
        self.out.write("\n")


def node_object(index, labels=None, deleting=False, autoscaler=False, no_ip=False):
    name = "node-%05d" % index
    addresses = [{"type": "Hostname", "address": name}]
    if not no_ip:
        addresses.insert(0, {"type": "InternalIP",
                             "address": "10.%d.%d.%d" % (64 + index // 65536,
                                                         (index // 256) % 256, index % 256)})
    meta = {"name": name, "uid": "uid-" + name,
            "labels": dict({"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"},
                           **(labels or {}))}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-24T10:00:00Z"
    spec = {"podCIDR": "10.244.%d.0/24" % (index % 256)}
    if autoscaler:
        spec["taints"] = [{"key": "ToBeDeletedByClusterAutoscaler", "value": "1732442400",
                           "effect": "NoSchedule"}]
    return {"apiVersion": "v1", "kind": "Node", "metadata": meta, "spec": spec,
            "status": {"addresses": addresses,
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def service_object(ns, name, index, local, two_ports):
    node_port = 30000 + index % 2768
    if two_ports:
        ports = [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080,
                  "nodePort": node_port},
                 {"name": "metrics", "protocol": "TCP", "port": 9090, "targetPort": 9100,
                  "nodePort": 30000 + (index + 1384) % 2768}]
    else:
        ports = [{"protocol": "TCP", "port": 80 + index % 3, "targetPort": 8080,
                  "nodePort": node_port}]
    spec = {"type": "LoadBalancer", "selector": {"app": name}, "ports": ports,
            "sessionAffinity": "None", "externalTrafficPolicy": "Local" if local else "Cluster",
            "clusterIP": "10.96.%d.%d" % (index // 256 % 256, index % 256),
            "ipFamilies": ["IPv4"]}
    if local:
        spec["healthCheckNodePort"] = 32000 + index % 767
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "uid": "uid-%s-%s" % (ns, name)},
            "spec": spec, "status": {"loadBalancer": {}}}


def slice_object(ns, service, two_ports, endpoints):
    if two_ports:
        ports = [{"name": "http", "protocol": "TCP", "port": 8080},
                 {"name": "metrics", "protocol": "TCP", "port": 9100}]
    else:
        ports = [{"name": "", "protocol": "TCP", "port": 8080}]
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": service + "-s1", "namespace": ns,
                         "labels": {"kubernetes.io/service-name": service,
                                    "endpointslice.kubernetes.io/managed-by":
                                        "endpointslice-controller.k8s.io"}},
            "addressType": "IPv4", "ports": ports,
            "endpoints": [dict(e) for e in endpoints]}


CONDITIONS = {
    "ready": {"ready": True, "serving": True, "terminating": False},
    "not-ready": {"ready": False, "serving": False, "terminating": False},
    "draining": {"ready": False, "serving": True, "terminating": True},
    "gone": {"ready": False, "serving": False, "terminating": True},
}


class Cluster:
    def __init__(self, args):
        self.args = args
        self.rnd = random.Random(args.seed)
        self.nodes = {}      # index -> Node object
        self.services = []   # (ns, name, two_ports)
        self.endpoints = {}  # (ns, name) -> list of endpoint dicts
        self.next_pod = 0
        self.next_node = args.nodes

    def pod_ip(self):
        self.next_pod += 1
        return "172.%d.%d.%d" % (16 + self.next_pod // 65536, (self.next_pod // 256) % 256,
                                 self.next_pod % 256)

    def endpoint(self, ns, node_index, state):
        ip = self.pod_ip()
        return {"addresses": [ip], "conditions": dict(CONDITIONS[state]),
                "nodeName": "node-%05d" % node_index,
                "targetRef": {"kind": "Pod", "namespace": ns, "name": "pod-%d" % self.next_pod}}

    def random_state(self):
        r = self.rnd.random()
        if r < 0.82:
            return "ready"
        if r < 0.88:
            return "not-ready"
        if r < 0.95:
            return "draining"
        return "gone"

    def emit_slice(self, stream, kind, ns, name, two_ports):
        stream.emit(kind, slice_object(ns, name, two_ports, self.endpoints[(ns, name)]))

    def base(self, stream):
        a, rnd = self.args, self.rnd
        namespaces = ["scale-%02d" % i for i in range(a.namespaces)]
        for ns in namespaces:
            stream.emit("ADDED", {"apiVersion": "v1", "kind": "Namespace",
                                  "metadata": {"name": ns, "uid": "uid-ns-" + ns,
                                               "labels": {"kubernetes.io/metadata.name": ns}}})
        for i in range(a.nodes):
            r = rnd.random()
            labels, deleting, autoscaler, no_ip = {}, False, False, False
            if r < 0.02:
                labels[EXCLUDE] = "true"
            elif r < 0.03:
                labels[EXCLUDE] = "false"
            elif r < 0.035:
                deleting = True
            elif r < 0.04:
                autoscaler = True
            if i == a.nodes - 1:
                no_ip = True
            self.nodes[i] = node_object(i, labels, deleting, autoscaler, no_ip)
            stream.emit("ADDED", self.nodes[i])
        # The rolling-update Deployment of the churn: 100 replicas on 50 nodes.
        rolling_nodes = rnd.sample(range(a.nodes), min(50, a.nodes))
        self.rolling_nodes = rolling_nodes
        per_service = max(1, a.endpoints // max(1, a.services))
        for i in range(a.services):
            ns = namespaces[i % len(namespaces)]
            name = "svc-%05d" % i
            local = rnd.random() < a.local_fraction
            two_ports = rnd.random() < 0.1
            rolling = i == 0
            if rolling:
                name, local, two_ports = "web-rolling", True, False
            self.services.append((ns, name, two_ports))
            stream.emit("ADDED", service_object(ns, name, i, local, two_ports))
            if rolling:
                eps = [self.endpoint(ns, rolling_nodes[k % len(rolling_nodes)], "ready")
                       for k in range(100)]
            elif rnd.random() < 0.02:
                eps = []
            else:
                count = rnd.randint(1, 2 * per_service - 1)
                eps = [self.endpoint(ns, rnd.randrange(a.nodes), self.random_state())
                       for _ in range(count)]
            self.endpoints[(ns, name)] = eps
        for ns, name, two_ports in self.services:
            self.emit_slice(stream, "ADDED", ns, name, two_ports)

    def rolling(self, stream):
        """maxSurge 25, maxUnavailable 0: 25 new pods come up not ready, turn
        ready while 25 old ones terminate (still serving), then the old go."""
        if not self.services:
            return
        ns, name, two_ports = self.services[0]
        eps = self.endpoints[(ns, name)]
        old = list(eps)
        for batch in range(4):
            new = [self.endpoint(ns, self.rnd.choice(self.rolling_nodes), "not-ready")
                   for _ in range(25)]
            eps.extend(new)
            self.emit_slice(stream, "MODIFIED", ns, name, two_ports)
            for e in new:
                e["conditions"] = dict(CONDITIONS["ready"])
            leaving = old[batch * 25:(batch + 1) * 25]
            for e in leaving:
                e["conditions"] = dict(CONDITIONS["draining"])
            self.emit_slice(stream, "MODIFIED", ns, name, two_ports)
            for e in leaving:
                eps.remove(e)
            self.emit_slice(stream, "MODIFIED", ns, name, two_ports)

    def drain(self, stream):
        """kubectl drain of the busiest node: cordon, its pods terminate
        (serving), are replaced elsewhere, then the node is deleted."""
        count = {}
        for eps in self.endpoints.values():
            for e in eps:
                count[e["nodeName"]] = count.get(e["nodeName"], 0) + 1
        if not count:
            return
        victim = max(sorted(count), key=lambda n: count[n])
        index = int(victim.split("-")[1])
        node = self.nodes[index]
        node["spec"]["unschedulable"] = True
        stream.emit("MODIFIED", node)
        touched = [key for key, eps in sorted(self.endpoints.items())
                   if any(e["nodeName"] == victim for e in eps)]
        two = {(ns, n): t for ns, n, t in self.services}
        for key in touched:
            for e in self.endpoints[key]:
                if e["nodeName"] == victim:
                    e["conditions"] = dict(CONDITIONS["draining"])
            self.emit_slice(stream, "MODIFIED", key[0], key[1], two[key])
        others = [i for i in sorted(self.nodes) if i != index]
        for key in touched:
            eps = self.endpoints[key]
            moved = [e for e in eps if e["nodeName"] == victim]
            for e in moved:
                eps.remove(e)
                eps.append(self.endpoint(key[0], self.rnd.choice(others), "ready"))
            self.emit_slice(stream, "MODIFIED", key[0], key[1], two[key])
        node["metadata"]["deletionTimestamp"] = "2026-11-24T11:00:00Z"
        stream.emit("MODIFIED", node)
        stream.emit("DELETED", node)
        del self.nodes[index]

    def add_remove_nodes(self, stream):
        """Ten nodes join; ten others are marked deleting, then deleted."""
        for _ in range(10):
            index = self.next_node
            self.next_node += 1
            self.nodes[index] = node_object(index)
            stream.emit("ADDED", self.nodes[index])
        for index in self.rnd.sample(sorted(self.nodes), min(10, len(self.nodes))):
            node = self.nodes.pop(index)
            node["metadata"]["deletionTimestamp"] = "2026-11-24T12:00:00Z"
            stream.emit("MODIFIED", node)
            stream.emit("DELETED", node)

    def noop(self, stream):
        """resourceVersion-only updates: a relist's worth of nothing."""
        for index in sorted(self.nodes)[:200]:
            stream.emit("MODIFIED", self.nodes[index])
        for ns, name, two_ports in self.services[:500]:
            self.emit_slice(stream, "MODIFIED", ns, name, two_ports)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--nodes", type=int, default=500)
    p.add_argument("--services", type=int, default=2000)
    p.add_argument("--endpoints", type=int, default=6000, help="total endpoints, about")
    p.add_argument("--namespaces", type=int, default=20)
    p.add_argument("--local-fraction", type=float, default=0.5)
    p.add_argument("--churn", default="", help="comma list of rolling,drain,nodes,noop")
    p.add_argument("--out", required=True)
    p.add_argument("--churn-out", help="churn events go here (default: after the base)")
    p.add_argument("--churn-parts", type=int, default=1,
                   help="split the churn steps, in order, over this many files: "
                        "--churn-out then holds %%d, numbered from 1")
    a = p.parse_args()
    if a.nodes < 2 or a.services < 1 or a.namespaces < 1:
        p.error("need at least 2 nodes, 1 Service and 1 namespace")
    cluster = Cluster(a)
    steps = {"rolling": cluster.rolling, "drain": cluster.drain,
             "nodes": cluster.add_remove_nodes, "noop": cluster.noop}
    churn = [s for s in a.churn.split(",") if s]
    for s in churn:
        if s not in steps:
            p.error("unknown churn step %r" % s)
    parts = max(1, a.churn_parts)
    if parts > 1 and (not a.churn_out or "%d" not in a.churn_out):
        p.error("--churn-parts needs a --churn-out holding %d")
    stream = Stream(open(a.out, "w"))
    cluster.base(stream)
    for part in range(parts):
        if a.churn_out:
            stream.out.close()
            stream.out = open(a.churn_out.replace("%d", str(part + 1)), "w")
        # Steps in order, as evenly as they go: 4 steps in 3 parts are 1, 1, 2.
        for s in churn[len(churn) * part // parts:len(churn) * (part + 1) // parts]:
            steps[s](stream)
    stream.out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
