#!/usr/bin/env python3
"""The floor of a forwarded gRPC call on gRPC 1.51: callmeshd's sync path next to bare forwarders.

Runs, side by side and in alternation (each side --repeat times, medians reported), unary
greeter.v1.Greeter/SayHello calls with bench/load/load_client at 1 and at 64 in flight:

  direct                   to the greeter
  callmeshd proxy          through callmeshd's transparent proxy
  callmeshd invoke         through Sidecar.Invoke
  bare callback            bench/sync/bare_forwarder --api=callback (gRPC's callback API, as callmeshd)
  bare cq, 1 thread        --api=cq --threads=1 (completion queue, run to completion on one thread)
  bare cq, 2 threads       --api=cq --threads=2
  bare cq, 1 thread + callback service
                           --api=cq --threads=1 --callback-health (gRPC's callback threads exist in
                           the process, as in callmeshd)

For each forwarding side: the forwarder's CPU per call (/proc/<pid>/stat) and its context switches
per call (`perf stat -e context-switches -p <pid>`, all threads), and the greeter's CPU per call.
Writes bench/results/<timestamp>-sync-floor.{json,md}. Not a test: asserts nothing.

  bazel build -c opt //:callmeshd //services/greeter:greeter_server //bench/load:load_client \\
      //bench/sync:bare_forwarder
  bench/sync/floor.py --bin-dir=$(bazel info -c opt bazel-bin) --repeat 3 --seconds 5
"""

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, BENCH)
import run  # noqa: E402  (bench/run.py: Proc, start_mesh, load, median_of)


def measure(binaries, side, proc, greeter, mode, in_flight, seconds, workdir):
    run.load(binaries["load_client"], mode, proc.address, in_flight, 0, 1, "warmup")
    stat_out = os.path.join(workdir, "perf-stat.txt")
    stat = None
    if proc is not greeter and shutil.which("perf"):
        stat = subprocess.Popen(["perf", "stat", "-e", "context-switches", "-o", stat_out, "-p",
                                 str(proc.popen.pid), "--", "sleep", str(seconds)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.1)
    cpu, greeter_cpu = proc.cpu_seconds(), greeter.cpu_seconds()
    result = run.load(binaries["load_client"], mode, proc.address, in_flight, 0, seconds, side)
    calls = max(1, result["calls"])
    result["greeter_cpu_us_per_call"] = (greeter.cpu_seconds() - greeter_cpu) / calls * 1e6
    if proc is not greeter:
        result["forwarder_cpu_us_per_call"] = (proc.cpu_seconds() - cpu) / calls * 1e6
    if stat is not None:
        stat.wait()
        for line in open(stat_out):
            parts = line.split()
            if len(parts) >= 2 and parts[1] == "context-switches":
                result["switches_per_call"] = int(parts[0].replace(",", "")) / calls
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    binaries = {"callmeshd": f"{args.bin_dir}/runtime/sidecar/callmeshd",
                "greeter_server": f"{args.bin_dir}/services/greeter/greeter_server",
                "load_client": f"{args.bin_dir}/bench/load/load_client"}
    forwarder = f"{args.bin_dir}/bench/sync/bare_forwarder"
    results = {"started": datetime.datetime.now().isoformat(timespec="seconds"),
               "load_start": open("/proc/loadavg").read().split()[:3], "note": args.note,
               "repeat": args.repeat, "seconds": args.seconds, "rows": []}
    with tempfile.TemporaryDirectory(prefix="callmesh-sync-floor-") as workdir:
        sidecar, greeter, _ = run.start_mesh(binaries, workdir, "floor")
        bare = {}
        try:
            for name, flags in (("bare callback", ["--api=callback"]),
                                ("bare cq, 1 thread", ["--api=cq", "--threads=1"]),
                                ("bare cq, 2 threads", ["--api=cq", "--threads=2"]),
                                ("bare cq, 1 thread + callback service",
                                 ["--api=cq", "--threads=1", "--callback-health"])):
                bare[name] = run.Proc([forwarder, "--listen=127.0.0.1:0",
                                       f"--target={greeter.address}"] + flags, workdir,
                                      name.replace(" ", "_").replace(",", "").replace("+", ""))
            sides = [("direct", "direct", greeter), ("callmeshd proxy", "proxy", sidecar),
                     ("callmeshd invoke", "invoke", sidecar)]
            sides += [(name, "direct", proc) for name, proc in bare.items()]
            for in_flight in (1, 64):
                runs = {name: [] for name, _, _ in sides}
                for _ in range(args.repeat):
                    for name, mode, proc in sides:
                        result = measure(binaries, name, proc, greeter, mode, in_flight,
                                         args.seconds, workdir)
                        runs[name].append(result)
                        print(f"  {in_flight:2} in flight  {name:38} "
                              f"{result['throughput']:7.0f}/s p50 {result['p50_us']:6.0f} us  "
                              f"forwarder {result.get('forwarder_cpu_us_per_call', 0):4.0f} us "
                              f"{result.get('switches_per_call', 0):5.2f} switches per call",
                              flush=True)
                base = run.median_of(runs["direct"], "throughput")
                base_p50 = run.median_of(runs["direct"], "p50_us")
                for name, results_of_side in runs.items():
                    row = {"in_flight": in_flight, "side": name, "runs": results_of_side}
                    for key in ("throughput", "p50_us", "p99_us", "forwarder_cpu_us_per_call",
                                "switches_per_call", "greeter_cpu_us_per_call"):
                        if key in results_of_side[0]:
                            row[key] = run.median_of(results_of_side, key)
                    row["throughput_ratio"] = row["throughput"] / base
                    row["added_p50_us"] = row["p50_us"] - base_p50
                    results["rows"].append(row)
        finally:
            for proc in list(bare.values()) + [greeter, sidecar]:
                proc.stop()
    results["load_end"] = open("/proc/loadavg").read().split()[:3]
    results["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = os.path.join(BENCH, "results", f"{stamp}-sync-floor")
    with open(base + ".json", "w") as f:
        json.dump(results, f, indent=1)
    lines = [f"# Sync path floor, {results['started']} → {results['finished']}", "",
             f"{args.repeat} repeats of {args.seconds} s per side, alternating; medians. "
             f"Load average at start / end: {' '.join(results['load_start'])} / "
             f"{' '.join(results['load_end'])}. {args.note}", "",
             "| in flight | side | calls/s | × direct | p50 µs | added p50 µs | p99 µs | "
             "forwarder CPU µs/call | forwarder context switches/call | greeter CPU µs/call |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in results["rows"]:
        cpu = row.get("forwarder_cpu_us_per_call")
        switches = row.get("switches_per_call")
        lines.append(
            f"| {row['in_flight']} | {row['side']} | {row['throughput']:,.0f} | "
            f"{row['throughput_ratio']:.2f} | {row['p50_us']:,.0f} | "
            f"{row['added_p50_us']:,.0f} | {row['p99_us']:,.0f} | "
            f"{'' if cpu is None else f'{cpu:.0f}'} | "
            f"{'' if switches is None else f'{switches:.2f}'} | "
            f"{row['greeter_cpu_us_per_call']:.0f} |")
    with open(base + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {base}.json, .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
