#!/usr/bin/env python3
"""Cluster mode's costs, side by side in one run, on loopback "hosts" (bench/README.md, "Cluster
mode"). Writes bench/results/cluster-<timestamp>.{json,md}.

Three nats-servers form one JetStream cluster (routes between them, registry bucket with 3
replicas); every host is a set of loopback ports. Host h1 runs a callmeshd and a greeter
registered as "greeter"; host h2 a callmeshd and a greeter registered as "greeter-h2" (so a call
from h1 to it must cross to h2: a local instance would always be preferred).

  sync      bench/load/load_client from h1: direct gRPC to h1's greeter vs Sidecar.Invoke of the
            greeter on h1 (one sidecar) vs of the greeter on h2 (h1's sidecar -> h2's peer
            listener -> greeter); 1 and 64 in flight, repeats alternating
  async     bench/async/async_load --mode=e2e from h1 (its callback service registered with h1):
            target on h1 vs on h2; 1 and 64 in flight, repeats alternating
  converge  host h3 (callmeshd + greeter "conv") started fresh, then its callmeshd killed with
            kill -9 (or stopped with SIGTERM): time until `callmesh services` on h1 no longer
            lists h3's instance, and calls of "conv" from h1 meanwhile (a second "conv" runs on
            h2): how many failed, when the first one succeeded

  bench/cluster/run.sh                       # builds -c opt, then this with 3 repeats of 10 s
  bench/cluster/run.sh --quick               # 1 repeat of 3 s, 3 convergence runs
  bench/cluster/cluster_bench.py --bin-dir=DIR --only converge --converge-runs 9
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import run as bench  # noqa: E402  bench/run.py: Proc, load, async_load, summarize, markdown, ...

ROOT = bench.ROOT


class NatsCluster:
    """Three nats-servers with JetStream on loopback, routed to each other."""

    def __init__(self, workdir, nodes=3):
        self.client_ports = [bench.free_port() for _ in range(nodes)]
        route_ports = [bench.free_port() for _ in range(nodes)]
        self.procs = []
        for i in range(nodes):
            directory = os.path.join(workdir, f"nats-n{i + 1}")
            os.makedirs(directory)
            routes = ", ".join(f'"nats://127.0.0.1:{p}"' for j, p in enumerate(route_ports)
                               if j != i)
            config = os.path.join(directory, "nats.conf")
            with open(config, "w") as f:
                f.write(f'server_name: n{i + 1}\nlisten: "127.0.0.1:{self.client_ports[i]}"\n'
                        f'jetstream {{ store_dir: "{directory}/store", max_memory_store: 64MB, '
                        f'max_file_store: 1GB }}\n'
                        f'cluster {{ name: callmesh-bench, listen: "127.0.0.1:{route_ports[i]}", '
                        f'routes: [{routes}] }}\n')
            self.procs.append(bench.Plain(["nats-server", "-c", config], workdir,
                                          f"nats-n{i + 1}"))

    def servers(self):
        return "[" + ", ".join(f"nats://127.0.0.1:{p}" for p in self.client_ports) + "]"

    def stop(self):
        for proc in self.procs:
            proc.stop()


class Host:
    """One loopback "host": a callmeshd in cluster mode (sidecar id `sidecar_id`)."""

    def __init__(self, binaries, workdir, nats, sidecar_id, tag=None):
        tag = tag or sidecar_id
        self.id = sidecar_id
        self.binaries = binaries
        data_dir = os.path.join(workdir, f"data-{tag}")
        config = os.path.join(workdir, f"callmeshd-{tag}.yaml")
        with open(config, "w") as f:
            f.write(f"listen: 127.0.0.1:0\nname: bench-{sidecar_id}\ndata_dir: {data_dir}\n"
                    f"cluster:\n  nats_servers: {nats.servers()}\n  sidecar_id: {sidecar_id}\n"
                    f"  advertise_address: 127.0.0.1:{bench.free_port()}\n  replicas: 3\n"
                    f"  heartbeat_interval: 1s\n  instance_ttl: 3s\n")
        self.sidecar = bench.Proc([binaries["callmeshd"], f"--config={config}",
                                   "--log-level=warn"], workdir, f"callmeshd-{tag}")
        self.greeters = []

    def wait_cluster(self, seconds=60):
        """Until the sidecar's shared registry works (health service callmesh.cluster)."""
        deadline = time.time() + seconds
        while time.time() < deadline:
            if subprocess.run([self.binaries["callmesh"], "--sidecar", self.sidecar.address,
                               "health", "--service", "callmesh.cluster"],
                              capture_output=True).returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError(f"sidecar {self.id}'s shared registry not serving after {seconds} s")

    def add_greeter(self, workdir, name, tag):
        greeter = bench.Proc([self.binaries["greeter_server"], "--listen=127.0.0.1:0",
                              f"--sidecar={self.sidecar.address}", f"--name={name}"], workdir,
                             f"greeter-{tag}")
        self.greeters.append(greeter)
        return greeter

    def stop(self):
        for greeter in self.greeters:
            greeter.stop()
        self.sidecar.stop()


def listed_hosts(binaries, sidecar, service=None):
    """The hosts of the instances `callmesh services` on `sidecar` lists (of `service`, or all)."""
    out = subprocess.run([binaries["callmesh"], "--sidecar", sidecar, "-o", "json", "services",
                          "--no-methods"], capture_output=True, text=True, timeout=10)
    if out.returncode != 0:
        raise RuntimeError(f"callmesh services: {out.stderr.strip()}")
    return sorted(i.get("host", "") for s in json.loads(out.stdout)
                  if service is None or s["name"] == service for i in s.get("instances", []))


def wait_listed(binaries, sidecar, service, hosts, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if listed_hosts(binaries, sidecar, service) == sorted(hosts):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{service} not listed on {hosts} after {seconds} s: "
                       f"{listed_hosts(binaries, sidecar, service)}")


def scenario_sync(binaries, workdir, h1, h2, local_greeter, repeat, seconds):
    rows = []
    paths = [("direct", "direct", local_greeter.address, {}),
             ("same host (one sidecar)", "invoke", h1.sidecar.address, {"service": "greeter"}),
             ("other host (two sidecars)", "invoke", h1.sidecar.address,
              {"service": "greeter-h2"})]
    for config, in_flight in (("one in flight", 1), ("64 in flight", 64)):
        runs = {side: [] for side, _, _, _ in paths}
        for _ in range(repeat):
            for side, mode, address, flags in paths:
                cpu = (h1.sidecar.cpu_seconds(), h2.sidecar.cpu_seconds())
                result = bench.load(binaries["load_client"], mode, address, in_flight=in_flight,
                                    seconds=seconds, label=f"cluster {config}/{side}", **flags)
                result["sidecar_cpu_s_per_s"] = (h1.sidecar.cpu_seconds() - cpu[0] +
                                                 h2.sidecar.cpu_seconds() - cpu[1]) / seconds
                runs[side].append(result)
                bench.print_run(config, side, result)
        base = bench.summarize("cluster sync", config, "direct", runs["direct"])
        rows.append(base)
        for side, _, _, _ in paths[1:]:
            rows.append(bench.summarize("cluster sync", config, side, runs[side], base,
                                        extra_keys=("sidecar_cpu_s_per_s",)))
        # The hop's own cost: the other host relative to the same host.
        rows[-1]["vs_same_host"] = rows[-1]["throughput"] / rows[-2]["throughput"]
    return rows


def scenario_async(binaries, workdir, h1, h2, repeat, seconds):
    rows = []
    for config, in_flight in (("1 in flight", 1), ("64 in flight", 64)):
        runs = {"same host": [], "other host": []}
        for _ in range(repeat):
            for side, service in (("same host", "greeter"), ("other host", "greeter-h2")):
                cpu = (h1.sidecar.cpu_seconds(), h2.sidecar.cpu_seconds())
                result = bench.async_load(binaries, h1.sidecar.address, "e2e", in_flight, seconds,
                                          f"cluster e2e {config}/{side}", service=service)
                result["sidecar_cpu_s_per_s"] = (h1.sidecar.cpu_seconds() - cpu[0] +
                                                 h2.sidecar.cpu_seconds() - cpu[1]) / seconds
                runs[side].append(result)
                bench.print_run(config, side, result)
        base = bench.summarize("cluster async e2e", config, "same host", runs["same host"],
                               extra_keys=("accept_p50_us", "accept_p99_us",
                                           "sidecar_cpu_s_per_s"))
        rows += [base, bench.summarize("cluster async e2e", config, "other host",
                                       runs["other host"], base,
                                       extra_keys=("accept_p50_us", "accept_p99_us",
                                                   "sidecar_cpu_s_per_s"))]
    return rows


def converge_once(binaries, workdir, nats, h1, run, how):
    """Starts h3 with a "conv" greeter, stops it (`how`: "kill -9" or "SIGTERM") and measures."""
    h3 = Host(binaries, workdir, nats, "h3", tag=f"h3-{run}")
    try:
        h3.wait_cluster()
        h3.add_greeter(workdir, "conv", f"conv-h3-{run}")
        wait_listed(binaries, h1.sidecar.address, "conv", ["h2", "h3"])
        time.sleep(1.5)  # a couple of heartbeats in a steady state
        stopped = time.monotonic()
        if how == "kill -9":
            h3.sidecar.popen.kill()
        else:
            h3.sidecar.popen.terminate()
        h3.sidecar.popen.wait()
        dropped = first_ok = None
        failed = calls = 0
        while dropped is None and time.monotonic() - stopped < 15:
            call = subprocess.run([binaries["callmesh"], "--sidecar", h1.sidecar.address,
                                   "invoke", "conv", "SayHello", "-d", '{"name": "x"}',
                                   "--timeout", "5s"], capture_output=True)
            calls += 1
            if call.returncode == 0:
                first_ok = first_ok or time.monotonic() - stopped
            else:
                failed += 1
            if "h3" not in listed_hosts(binaries, h1.sidecar.address):
                dropped = time.monotonic() - stopped
        if dropped is None:
            raise RuntimeError(f"h1 still lists h3 15 s after {how}")
        result = {"how": how, "dropped_s": dropped, "first_ok_s": first_ok, "calls": calls,
                  "failed_calls": failed}
        print(f"   {how} run {run}: h3 dropped by h1 after {dropped:.2f} s; {calls} calls, "
              f"{failed} failed, first success after {first_ok or float('nan'):.3f} s", flush=True)
        return result
    finally:
        h3.stop()


def scenario_converge(binaries, workdir, nats, h1, runs):
    rows = []
    for how in ("kill -9", "SIGTERM"):
        results = [converge_once(binaries, workdir, nats, h1, f"{how[:4].strip('- ')}{i}", how)
                   for i in range(runs if how == "kill -9" else max(1, runs // 2))]
        drops = [r["dropped_s"] for r in results]
        rows.append({"scenario": "cluster converge", "config": how, "mode": "h1 drops h3",
                     "runs": results, "dropped_median_s": statistics.median(drops),
                     "dropped_min_s": min(drops), "dropped_max_s": max(drops),
                     "failed_calls": sum(r["failed_calls"] for r in results),
                     "calls": sum(r["calls"] for r in results)})
    return rows


def converge_markdown(rows):
    lines = ["| how h3's sidecar stopped | runs | h1 no longer lists h3: median | min | max | "
             "calls of \"conv\" from h1 meanwhile | failed |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['config']} | {len(row['runs'])} | {row['dropped_median_s']:.2f} s | "
                     f"{row['dropped_min_s']:.2f} s | {row['dropped_max_s']:.2f} s | "
                     f"{row['calls']} | {row['failed_calls']} |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--converge-runs", type=int, default=7,
                        help="kill -9 runs (SIGTERM: half as many)")
    parser.add_argument("--quick", action="store_true", help="1 repeat of 3 s, 3 kill -9 runs")
    parser.add_argument("--only", choices=["sync", "async", "converge"], action="append")
    parser.add_argument("--bin-dir", help="bazel-bin of `bazel build -c opt`")
    parser.add_argument("--note", default="", help="free text for the report's header")
    parser.add_argument("--commit", help="commit the binaries were built from (default: this "
                        "checkout's HEAD)")
    args = parser.parse_args()
    if args.quick:
        args.repeat, args.seconds, args.converge_runs = 1, 3, 3
    bin_dir = args.bin_dir or bench.bazel_bin()
    binaries = {"callmeshd": f"{bin_dir}/runtime/sidecar/callmeshd",
                "callmesh": f"{bin_dir}/cli/callmesh",
                "greeter_server": f"{bin_dir}/services/greeter/greeter_server",
                "load_client": f"{bin_dir}/bench/load/load_client",
                "async_load": f"{bin_dir}/bench/async/async_load"}
    commit = args.commit or subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                                           capture_output=True, text=True).stdout.strip()
    results = {"started": datetime.datetime.now().isoformat(timespec="seconds"),
               "machine": bench.machine_info(),
               "versions": {k: v for k, v in bench.versions().items()
                            if k in ("gRPC", "protobuf", "RocksDB", "NATS server")},
               "commit": commit, "note": args.note, "repeat": args.repeat,
               "seconds": args.seconds, "rows": []}
    only = args.only or ["sync", "async", "converge"]
    with tempfile.TemporaryDirectory(prefix="callmesh-bench-cluster-") as workdir:
        nats = NatsCluster(workdir)
        hosts = []
        try:
            h1 = Host(binaries, workdir, nats, "h1")
            hosts.append(h1)
            h2 = Host(binaries, workdir, nats, "h2")
            hosts.append(h2)
            for host in hosts:
                host.wait_cluster()
            local_greeter = h1.add_greeter(workdir, "greeter", "h1")
            h2.add_greeter(workdir, "greeter-h2", "h2")
            h2.add_greeter(workdir, "conv", "conv-h2")
            wait_listed(binaries, h1.sidecar.address, "greeter-h2", ["h2"])
            if "sync" in only:
                print("== cluster sync", flush=True)
                results["rows"] += scenario_sync(binaries, workdir, h1, h2, local_greeter,
                                                 args.repeat, args.seconds)
            if "async" in only:
                print("== cluster async e2e", flush=True)
                results["rows"] += scenario_async(binaries, workdir, h1, h2, args.repeat,
                                                  args.seconds)
            if "converge" in only:
                print("== cluster convergence", flush=True)
                results["rows"] += scenario_converge(binaries, workdir, nats, h1,
                                                     args.converge_runs)
        finally:
            for host in reversed(hosts):
                host.stop()
            nats.stop()
    results["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
    results["machine"]["load_end"] = " ".join(open("/proc/loadavg").read().split()[:3])
    out_dir = os.path.join(ROOT, "bench", "results")
    os.makedirs(out_dir, exist_ok=True)
    base = os.path.join(out_dir, "cluster-" + datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))
    with open(base + ".json", "w") as f:
        json.dump(results, f, indent=1)
    throughput = dict(results, rows=[r for r in results["rows"] if "throughput" in r])
    converge = [r for r in results["rows"] if r["scenario"] == "cluster converge"]
    report = f"Commit {commit}.\n\n" + bench.markdown(throughput)
    if converge:
        report += ("\nRegistry convergence (heartbeat_interval 1s, instance_ttl 3s):\n\n" +
                   converge_markdown(converge))
    with open(base + ".md", "w") as f:
        f.write(report)
    print(report)
    print(f"wrote {base}.json, .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
