#!/usr/bin/env python3
"""Where the sidecar's time goes: a perf profile of callmeshd on the async and the sync path.

Starts callmeshd (fresh data dir) and the greeter like bench/run.py does, drives one path with
the benchmark's own load generators, and records the sidecar alone with `perf record -g` while
the load runs. Prints the top symbols (self time, share of the sidecar's samples) grouped as
"libgrpc / kernel / rocksdb / callmesh / libc / other" and the per-call figures from the run.

  bench/profile.py --bin-dir=$(bazel info -c opt bazel-bin) --path async
  bench/profile.py --bin-dir=... --path sync --seconds 10 --top 25
  bench/profile.py --bin-dir=... --path async --sidecar-config=nospin.yaml

Paths:
  async  async_load --mode=e2e, 64 in flight (accept -> greeter -> journal -> callback)
  sync   load_client --mode=invoke, 1 in flight (Sidecar.Invoke to the greeter); --sync-mode=proxy
         for the transparent proxy instead

Also prints the sidecar's context switches (in all and by thread name), CPU migrations and
thread creations per call (`perf stat --per-thread` attached to the sidecar during the recorded
run).

Needs `perf` (linux-perf; bench/install_deps.sh installs it) and root or
kernel.perf_event_paranoid <= 1. Not a test: it asserts nothing.
"""

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (bench/run.py: Proc, start_mesh, async_load, load)


def classify(dso, symbol):
    if dso.startswith("[kernel") or dso == "[vdso]":
        return "kernel"
    if "grpc" in dso or "gpr" in dso or "upb" in dso or "address_sorting" in dso:
        return "libgrpc"
    if "rocksdb" in dso:
        return "rocksdb"
    if "protobuf" in dso:
        return "libprotobuf"
    if "absl" in dso:
        return "abseil"
    if dso.startswith("libc.so") or dso.startswith("libstdc++") or dso.startswith("libm."):
        return "libc/libstdc++"
    if dso == "callmeshd":
        return "callmeshd (ours, and what is linked in statically)"
    return "other"


def perf_stat(perf_stat_output, calls):
    """Per call: context switches (also by thread name), CPU migrations and threads started, from
    `perf stat --per-thread` (lines "<name>-<tid>  <count>  <event>")."""
    counts = collections.Counter()
    switches_by_thread = collections.Counter()
    for line in open(perf_stat_output):
        parts = line.split()
        if len(parts) >= 3 and parts[1].replace(",", "").isdigit():
            count = int(parts[1].replace(",", ""))
            counts[parts[2]] += count
            if parts[2] == "context-switches":
                switches_by_thread[parts[0].rsplit("-", 1)[0]] += count
    print("per call (perf stat over the recorded run, all of the sidecar's threads): "
          f"{counts.get('context-switches', 0) / calls:.2f} context switches, "
          f"{counts.get('cpu-migrations', 0) / calls:.2f} CPU migrations, "
          f"{counts.get('sched:sched_process_fork', 0) / calls:.3f} threads started")
    print("  context switches per call by thread name (gRPC names its threads; callmesh's: "
          "journal-writer, journal-done, task-runner): " +
          ", ".join(f"{name} {count / calls:.2f}" for name, count in
                    switches_by_thread.most_common() if count / calls >= 0.01))


def report(perf_data, top):
    out = subprocess.run(
        ["perf", "report", "-i", perf_data, "--no-children", "--sort", "dso,sym", "--stdio",
         "--percent-limit", "0", "-g", "none", "-q"],
        capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 4 or not parts[0].endswith("%"):
            continue
        share = float(parts[0].rstrip("%"))
        dso = parts[1]
        symbol = " ".join(parts[3:])
        rows.append((share, dso, symbol))
    groups = collections.Counter()
    for share, dso, symbol in rows:
        groups[classify(dso, symbol)] += share
    print("shares by library:")
    for name, share in groups.most_common():
        print(f"  {share:5.1f}%  {name}")
    print(f"top {top} symbols (self):")
    for share, dso, symbol in rows[:top]:
        print(f"  {share:5.1f}%  {dso:28.28}  {symbol[:90]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--path", choices=("async", "sync"), required=True)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--keep", help="copy perf.data here")
    parser.add_argument("--sync-mode", choices=("invoke", "proxy"), default="invoke",
                        help="--path sync: Sidecar.Invoke or the transparent proxy")
    parser.add_argument("--sidecar-config",
                        help="a callmeshd config file (e.g. journal: {spin_wait: 0s}) to profile "
                        "a setting against the defaults")
    args = parser.parse_args()
    binaries = {"callmeshd": f"{args.bin_dir}/runtime/sidecar/callmeshd",
                "greeter_server": f"{args.bin_dir}/services/greeter/greeter_server",
                "load_client": f"{args.bin_dir}/bench/load/load_client",
                "async_load": f"{args.bin_dir}/bench/async/async_load"}
    with tempfile.TemporaryDirectory(prefix="callmesh-profile-") as workdir:
        sidecar, greeter, _ = run.start_mesh(binaries, workdir, "profile", args.sidecar_config)
        perf_data = os.path.join(workdir, "perf.data")
        try:
            # Warm up (connections, memtables), then record the sidecar during a second run.
            if args.path == "async":
                run.async_load(binaries, sidecar.address, "e2e", 64, 2, "warmup")
            else:
                run.load(binaries["load_client"], args.sync_mode, sidecar.address, 1, 0, 2,
                         "warmup")
            perf = subprocess.Popen(
                ["perf", "record", "-F", "999", "-g", "-o", perf_data, "-p",
                 str(sidecar.popen.pid), "--", "sleep", str(args.seconds)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            stat_output = os.path.join(workdir, "perf-stat.txt")
            stat = subprocess.Popen(
                ["perf", "stat", "--per-thread", "-e",
                 "context-switches,cpu-migrations,sched:sched_process_fork", "-o", stat_output,
                 "-p", str(sidecar.popen.pid), "--", "sleep", str(args.seconds)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.2)
            cpu, wall = sidecar.cpu_seconds(), time.time()
            if args.path == "async":
                result = run.async_load(binaries, sidecar.address, "e2e", 64, args.seconds,
                                        "profile")
            else:
                result = run.load(binaries["load_client"], args.sync_mode, sidecar.address, 1,
                                  0, args.seconds, "profile")
            cpu_per_call_us = ((sidecar.cpu_seconds() - cpu) /
                               max(1, result["calls"]) * 1e6)
            perf.wait()
            stat.wait()
            mode = f" ({args.sync_mode})" if args.path == "sync" else ""
            print(f"path {args.path}{mode}: {result['throughput']:.0f} calls/s, p50 "
                  f"{result['p50_us']:.0f} us, sidecar CPU per call {cpu_per_call_us:.0f} us, "
                  f"load average {open('/proc/loadavg').read().split()[:3]}, "
                  f"wall {time.time() - wall:.0f} s")
            perf_stat(stat_output, max(1, result["calls"]))
            report(perf_data, args.top)
            if args.keep:
                subprocess.run(["cp", perf_data, args.keep], check=True)
        finally:
            greeter.stop()
            sidecar.stop()


if __name__ == "__main__":
    sys.exit(main())
