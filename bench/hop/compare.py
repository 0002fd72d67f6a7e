#!/usr/bin/env python3
"""What one forwarding hop costs on gRPC 1.51, whichever API serves it (bench/README.md "Round
eight"). The greeter called directly, through the barest proxies bare_proxy can be (completion-queue
API on one and on two threads, callback API), and through callmeshd (the transparent proxy and
Sidecar.Invoke), with load_client at 1 and at 64 calls in flight. Every configuration runs once
per round, in an order reversed every other round; the table gives medians over the rounds,
calls/s against direct, the p50 added to direct's, and the forwarding process's CPU per call.

  bench/hop/compare.py [--rounds 3] [--seconds 5] [--bin-dir DIR]

Binaries: bazel build -c opt //:callmeshd //services/greeter:greeter_server \\
          //bench/load:load_client //bench/hop
Writes bench/results/<timestamp>-hop.{json,md}."""
import argparse
import datetime
import json
import os
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
import run  # noqa: E402  (bench/run.py: Proc, start_mesh, load, machine_info, versions)

PROXIES = {"bare_proxy, CQ API, 1 thread": ["--api=cq", "--threads=1"],
           "bare_proxy, CQ API, 2 threads": ["--api=cq", "--threads=2"],
           "bare_proxy, callback API": ["--api=callback"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--bin-dir", default=None, help="bazel-bin of an opt build")
    args = parser.parse_args()
    bin_dir = args.bin_dir or run.bazel_bin()
    binaries = {"callmeshd": f"{bin_dir}/runtime/sidecar/callmeshd",
                "greeter_server": f"{bin_dir}/services/greeter/greeter_server"}
    load_client = f"{bin_dir}/bench/load/load_client"
    bare_proxy = f"{bin_dir}/bench/hop/bare_proxy"
    workdir = tempfile.mkdtemp(prefix="callmesh-hop-")
    started = datetime.datetime.now()
    sidecar, greeter, data_dir = run.start_mesh(binaries, workdir, "hop")
    proxies = {}
    try:
        for name, flags in PROXIES.items():
            proxies[name] = run.Proc([bare_proxy, f"--target={greeter.address}"] + flags, workdir,
                                     name.replace(" ", "_").replace(",", ""))
        # (label, load_client mode, address, the process that forwards)
        configs = [("direct", "direct", greeter.address, None)]
        configs += [(name, "direct", proc.address, proc) for name, proc in proxies.items()]
        configs += [("callmeshd proxy", "proxy", sidecar.address, sidecar),
                    ("callmeshd Invoke", "invoke", sidecar.address, sidecar)]
        rows = []
        for in_flight in (1, 64):
            runs = {label: [] for label, *_ in configs}
            for round_number in range(args.rounds):
                order = configs if round_number % 2 == 0 else list(reversed(configs))
                for label, mode, address, forwarder in order:
                    cpu = forwarder.cpu_seconds() if forwarder else 0.0
                    result = run.load(load_client, mode, address, in_flight=in_flight,
                                      seconds=args.seconds, label=label)
                    calls = result["throughput"] * args.seconds
                    if forwarder and calls > 0:
                        result["forwarder_cpu_us_per_call"] = \
                            (forwarder.cpu_seconds() - cpu) / calls * 1e6
                    runs[label].append(result)
                    print(f"  {in_flight:>2} in flight  {label:28s} {result['throughput']:8.0f}/s "
                          f"p50 {result['p50_us']:6.0f} us", flush=True)
            direct = runs["direct"]
            direct_rate = statistics.median(r["throughput"] for r in direct)
            direct_p50 = statistics.median(r["p50_us"] for r in direct)
            for label, results in runs.items():
                row = {"in_flight": in_flight, "config": label,
                       "throughput": statistics.median(r["throughput"] for r in results),
                       "p50_us": statistics.median(r["p50_us"] for r in results),
                       "p99_us": statistics.median(r["p99_us"] for r in results)}
                row["ratio"] = row["throughput"] / direct_rate
                row["added_p50_us"] = row["p50_us"] - direct_p50
                cpu = [r["forwarder_cpu_us_per_call"] for r in results
                       if "forwarder_cpu_us_per_call" in r]
                row["forwarder_cpu_us_per_call"] = statistics.median(cpu) if cpu else None
                rows.append(row)
    finally:
        for proc in proxies.values():
            proc.popen.kill()
        greeter.stop()
        sidecar.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    write(rows, args, started)


def write(rows, args, started):
    stamp = started.strftime("%Y%m%d-%H%M%S")
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "results",
                       f"{stamp}-hop")
    document = {"started": started.isoformat(timespec="seconds"), "rounds": args.rounds,
                "seconds": args.seconds, "machine": run.machine_info(),
                "versions": run.versions(), "rows": rows}
    with open(out + ".json", "w") as f:
        json.dump(document, f, indent=1)
    lines = [f"One forwarding hop on gRPC 1.51 (bench/hop/compare.py), "
             f"{args.rounds} rounds of {args.seconds} s, medians; {started:%Y-%m-%d %H:%M}.", "",
             "| in flight | configuration | calls/s | × direct | p50 µs | added p50 µs | p99 µs "
             "| forwarder CPU µs/call |", "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        cpu = row["forwarder_cpu_us_per_call"]
        lines.append(f"| {row['in_flight']} | {row['config']} | {row['throughput']:,.0f} | "
                     f"{row['ratio']:.2f} | {row['p50_us']:,.0f} | {row['added_p50_us']:,.0f} | "
                     f"{row['p99_us']:,.0f} | {'' if cpu is None else f'{cpu:.0f}'} |")
    with open(out + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {os.path.normpath(out)}.json, .md")


if __name__ == "__main__":
    main()
