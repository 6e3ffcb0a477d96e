#!/usr/bin/env python3
"""scale_bench.py BUILD_DIR — the real three processes at full scale (make bench).

Generates a seeded cluster with tests/scale/gen_cluster.py, runs the pipeline
one-shot (scripts/kavi-run) against the bundled Avi simulator, and measures:

  floor        read+parse of the same stream (BUILD_DIR/bench/parse_floor)
  sync         watcher+planner initial sync (planner's "every model ... published"
               line) and the whole one-shot run, with their ratio to the floor
  writes       REST writes of the run (the simulator's counters) against the
               minimum: the objects the oracle (tests/scale/expect_pools.py)
               expects, each created once
  restart      a second one-shot run on the same controller: writes (must be 0)
  churn        the base plus churn (rolling update, drain, nodes added and
               removed, resourceVersion-only updates) on the same controller:
               pool writes against the pools whose servers changed
  latency      a smaller cluster with 20 ms simulated controller latency, one
               request at a time against the default bound
  rss          peak RSS (VmHWM) of each stage

and verifies every pool on the controller against the oracle (a mismatch
fails the bench). Prints a table, writes build/bench/scale.json and, when
gnuplot is installed, build/bench/scale.png.

Sizes: BENCH_NODES (5000), BENCH_SERVICES (10000), BENCH_ENDPOINTS (150000),
BENCH_LOCAL (1.0: all Local), BENCH_LATENCY_SERVICES (1000), BENCH_SEED (1).
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def env(name, default):
    return type(default)(os.environ.get(name, default))


class Sampler(threading.Thread):
    """Peak VmHWM per kavi stage, sampled from /proc while the run lasts."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak = {}
        self.stop = threading.Event()

    def run(self):
        while not self.stop.wait(0.2):
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    with open(f"/proc/{pid}/comm") as f:
                        name = f.read().strip()
                    if name not in ("kavi-watcher", "kavi-planner", "kavi-syncer"):
                        continue
                    with open(f"/proc/{pid}/status") as f:
                        m = re.search(r"VmHWM:\s+(\d+) kB", f.read())
                except OSError:
                    continue
                if m:
                    self.peak[name] = max(self.peak.get(name, 0), int(m.group(1)) // 1024)


class Simulator:
    def __init__(self, bin_dir, work, faults=None):
        self.port_file = os.path.join(work, "avisim.port")
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)  # the previous simulator's
        args = [os.path.join(bin_dir, "avisim"), "--port", "0", "--port-file", self.port_file,
                "--vip-range", "10.100.0.1-10.100.254.254"]
        if faults:
            args += ["--faults", json.dumps(faults)]
        self.log = open(os.path.join(work, "avisim.log"), "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not (os.path.exists(self.port_file) and open(self.port_file).read().strip()):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                sys.exit("scale_bench: the simulator did not start")
            time.sleep(0.05)
        self.port = int(open(self.port_file).read())

    def get(self, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=120) as r:
            return json.load(r)

    def writes(self):
        counters = self.get("/_sim/counters")["requests"]
        return {k: v for k, v in counters.items()
                if k.split()[0] in ("POST", "PUT", "PATCH", "DELETE") and "login" not in k}

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        self.log.close()


def write_config(work, port, cluster="kavi", extra=""):
    base = 21000 + os.getpid() % 20000
    path = os.path.join(work, "kavi.yaml")
    with open(path, "w") as f:
        f.write(f"""clusterName: {cluster}
serviceType: NodePort
controllerHost: http://127.0.0.1:{port}
controllerVersion: "22.1.3"
tenantName: admin
vipNetworkList:
  - networkName: vip-net
logLevel: INFO
credentials:
  username: admin
  password: avi123
bus:
  k8sPublish: tcp://127.0.0.1:{base}
  k8sSnapshot: tcp://127.0.0.1:{base + 1}
  modelPublish: tcp://127.0.0.1:{base + 2}
  modelSnapshot: tcp://127.0.0.1:{base + 3}
  status: tcp://127.0.0.1:{base + 4}
{extra}""")
    return path


def one_shot(bin_dir, config, stream, work, label):
    """Runs kavi-run; returns (seconds, seconds to the planner's full publication)."""
    log_path = os.path.join(work, f"{label}.log")
    env_ = dict(os.environ, KAVI_BIN_DIR=bin_dir)
    start = time.monotonic()
    with open(log_path, "w") as log:
        proc = subprocess.Popen([os.path.join(ROOT, "scripts/kavi-run"), "--config", config,
                                 "--replay", stream, "--timeout", "3000"],
                                stdout=log, stderr=subprocess.STDOUT, env=env_)
        planned = None
        while proc.poll() is None:
            if planned is None:
                with open(log_path) as f:
                    if "every model of model.admin published" in f.read():
                        planned = time.monotonic() - start
            time.sleep(0.05)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"scale_bench: {label}: kavi-run failed; see {log_path}:\n" +
                 "".join(open(log_path).readlines()[-5:]))
    return seconds, planned


def oracle(streams, work, name):
    out = os.path.join(work, f"{name}.expect.json")
    with open(out, "w") as f:
        subprocess.run([sys.executable, os.path.join(ROOT, "tests/scale/expect_pools.py")] + streams,
                       stdout=f, check=True)
    return json.load(open(out))


def controller_pools(sim):
    """The controller's pools in the oracle's form: name → sorted server lines."""
    state = sim.get("/_sim/state")
    pools = {}
    for tenant, objects in state.items():
        if tenant != "admin":
            continue  # the oracle covers tenantName's Services
        for pool in objects.get("pool", []):
            servers = []
            for s in pool.get("servers", []):
                servers.append("%s %s:%d %s" % (s.get("hostname", ""), s["ip"]["addr"], s["port"],
                                                 "enabled" if s.get("enabled", True) else "disabled"))
            pools[pool["name"]] = sorted(servers)
    return pools


def check_pools(sim, expected, label):
    have = controller_pools(sim)
    want = {k: sorted(v) for k, v in expected.get("pool", {}).items()}
    missing = [k for k in want if k not in have]
    extra = [k for k in have if k not in want]
    wrong = [k for k in want if k in have and have[k] != want[k]]
    if missing or extra or wrong:
        sys.exit(f"scale_bench: {label}: {len(missing)} pools missing, {len(extra)} extra, "
                 f"{len(wrong)} wrong (e.g. {(missing + extra + wrong)[:3]})")
    return len(want)


def total(counts):
    return sum(counts.values())


def delta(after, before):
    return {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)}


def say(text):
    print(text, flush=True)


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build/release"
    bin_dir = os.path.abspath(os.path.join(build, "bin"))
    nodes, services = env("BENCH_NODES", 5000), env("BENCH_SERVICES", 10000)
    endpoints, local = env("BENCH_ENDPOINTS", 150000), env("BENCH_LOCAL", 1.0)
    seed = env("BENCH_SEED", 1)
    work = tempfile.mkdtemp(prefix="kavi-bench-")
    results = {"nodes": nodes, "services": services, "endpoints": endpoints,
               "local_fraction": local, "seed": seed}
    gen = [sys.executable, os.path.join(ROOT, "tests/scale/gen_cluster.py"), "--seed", str(seed),
           "--nodes", str(nodes), "--services", str(services), "--endpoints", str(endpoints),
           "--local-fraction", str(local)]
    base = os.path.join(work, "base.ndjson")
    churn = os.path.join(work, "churn.ndjson")
    subprocess.run(gen + ["--churn", "rolling,drain,nodes,noop", "--out", base,
                          "--churn-out", churn], check=True)
    with_churn = os.path.join(work, "with-churn.ndjson")
    with open(with_churn, "w") as out:
        for path in (base, churn):
            shutil.copyfileobj(open(path), out)

    floor = subprocess.run([os.path.join(build, "bench", "parse_floor"), base],
                           capture_output=True, text=True, check=True).stdout.split()
    results["stream_lines"], results["floor_s"] = int(floor[0]), float(floor[1])

    expected = oracle([base], work, "base")
    expected_churn = oracle([base, churn], work, "churn")
    minimum = sum(len(v) for k, v in expected.items() if isinstance(v, list)) + len(expected["pool"])
    changed_pools = sum(1 for k, v in expected_churn["pool"].items()
                        if sorted(v) != sorted(expected["pool"].get(k, [])))
    changed_pools += sum(1 for k in expected["pool"] if k not in expected_churn["pool"])

    say(f"  stream: {results['stream_lines']} lines, read+parse floor {results['floor_s']:.2f} s")
    sampler = Sampler()
    sampler.start()
    sim = Simulator(bin_dir, work)
    config = write_config(work, sim.port)
    seconds, planned = one_shot(bin_dir, config, base, work, "initial")
    results["initial_sync_s"], results["watcher_planner_s"] = seconds, planned
    results["pools"] = check_pools(sim, expected, "initial sync")
    after_initial = sim.writes()
    results["initial_writes"], results["initial_writes_minimum"] = total(after_initial), minimum
    say(f"  initial sync: {seconds:.1f} s, {results['pools']} pools match the oracle")

    seconds, _ = one_shot(bin_dir, config, base, work, "restart")
    after_restart = sim.writes()
    results["restart_writes"] = total(delta(after_restart, after_initial))

    seconds, _ = one_shot(bin_dir, config, with_churn, work, "churn")
    check_pools(sim, expected_churn, "after the churn")
    churn_writes = delta(sim.writes(), after_restart)
    results["churn_pool_writes"] = sum(v for k, v in churn_writes.items() if k.endswith(" pool"))
    results["churn_writes"] = total(churn_writes)
    results["churn_pools_changed"] = changed_pools
    sim.stop()
    sampler.stop.set()
    sampler.join()
    results["peak_rss_mb"] = sampler.peak

    # Controller latency: the same one-shot on a smaller cluster, one request
    # at a time against the default bound.
    small = os.path.join(work, "small.ndjson")
    latency_services = env("BENCH_LATENCY_SERVICES", 1000)
    subprocess.run(gen[:4] + ["--nodes", "100", "--services", str(latency_services), "--endpoints",
                              str(latency_services * 15), "--local-fraction", str(local),
                              "--churn", "", "--out", small], check=True)
    for label, extra in (("latency_serial_s", "controllerParallelRequests: 1\n"),
                         ("latency_parallel_s", "")):
        sim = Simulator(bin_dir, work, {"latency_ms": 20})
        config = write_config(work, sim.port, extra=extra)
        results[label], _ = one_shot(bin_dir, config, small, work, label)
        sim.stop()
    results["latency_speedup"] = results["latency_serial_s"] / results["latency_parallel_s"]

    results["initial_over_floor"] = results["initial_sync_s"] / results["floor_s"]
    if planned:
        results["watcher_planner_over_floor"] = planned / results["floor_s"]
    out_dir = os.path.join(build, "bench")
    with open(os.path.join(out_dir, "scale.json"), "w") as f:
        json.dump(results, f, indent=2, sort_keys=True)
    for k in sorted(results):
        print(f"  {k:28} {results[k]}")
    plot(results, out_dir)
    shutil.rmtree(work, ignore_errors=True)


def plot(results, out_dir):
    if not shutil.which("gnuplot"):
        print("  (gnuplot not installed: no scale.png)")
        return
    data = os.path.join(out_dir, "scale.dat")
    rows = [("floor", results["floor_s"]), ("watcher+planner", results.get("watcher_planner_s") or 0),
            ("one-shot", results["initial_sync_s"]),
            ("20ms serial", results["latency_serial_s"]), ("20ms parallel", results["latency_parallel_s"])]
    with open(data, "w") as f:
        for name, value in rows:
            f.write(f'"{name}" {value:.3f}\n')
    script = f"""set terminal png size 800,400
set output '{os.path.join(out_dir, "scale.png")}'
set title 'kavi at {results["nodes"]} nodes, {results["services"]} Services (seconds)'
set style data histograms
set style fill solid
set boxwidth 0.6
set yrange [0:*]
plot '{data}' using 2:xtic(1) notitle
"""
    subprocess.run(["gnuplot"], input=script, text=True, check=True)


if __name__ == "__main__":
    main()
