#!/usr/bin/env python3
"""Two or more callmeshd builds on one workload, alternated pair by pair: an A/B of a change.

bench/run.py compares callmesh with what users pick instead; a change to callmeshd is compared by
running two whole run.py runs, one after the other, and on a shared or drifting machine the two
runs differ by more than most changes do (bench/README.md "Round seven": the direct gRPC round
trip alone moved 86 -> 108 us between two runs). This script runs the builds in pairs instead:
each pair runs every build once, the order reversed every other pair (A B, B A, A B, ...), so
drift hits the builds alike; every run gets a fresh callmeshd and data dir, with the greeter
registered on it. It reports per build the medians of calls/s, p50, p99, the sidecar's CPU per
call and its RSS after the run, and per pair each build's ratio to the first build, with the
median of those ratios: the figure to quote.

  bench/ab.py --callmeshd before=/tmp/callmeshd-old --callmeshd after=bazel-bin/.../callmeshd
  bench/ab.py ... --workload invoke --in-flight 1 --pairs 8 --seconds 5
  bench/ab.py ... --env after=MALLOC_CONF=narenas:8    # one build's environment
  bench/ab.py --callmeshd spin=PATH --callmeshd nospin=PATH --config nospin=nospin.yaml

Workloads: e2e (InvokeAsync on one stream -> greeter -> persisted -> callback, async_load
--mode=e2e --stream=true), invoke and proxy (sync, load_client). The greeter and the load clients
come from --bin-dir (default: bazel's -c opt bazel-bin). Writes bench/results/<stamp>-ab.{json,md}.
"""
import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (bench/run.py: the processes and load clients, shared)

WORKLOADS = ("e2e", "invoke", "proxy")


def one_run(binaries, callmeshd, env, config, workdir, tag, workload, in_flight, seconds):
    """One fresh sidecar + greeter, one load run; the load client's RESULT plus the sidecar's and
    the greeter's CPU per call and the sidecar's memory."""
    sidecar, greeter, _ = run.start_mesh(dict(binaries, callmeshd=callmeshd), workdir, tag,
                                         config=config, env=env)
    try:
        sidecar_cpu, greeter_cpu = sidecar.cpu_seconds(), greeter.cpu_seconds()
        if workload == "e2e":
            result = run.async_load(binaries, sidecar.address, "e2e", in_flight, seconds, tag,
                                    stream="true")
        else:
            result = run.load(binaries["load_client"], workload, sidecar.address,
                              in_flight=in_flight, seconds=seconds, label=tag)
        # Both per call of the measured seconds; the load client's start and warm-up add a little
        # CPU to both processes alike.
        calls = max(result["throughput"] * seconds, 1e-9)
        result["sidecar_cpu_us_per_call"] = (sidecar.cpu_seconds() - sidecar_cpu) / calls * 1e6
        result["greeter_cpu_us_per_call"] = (greeter.cpu_seconds() - greeter_cpu) / calls * 1e6
        result.update(sidecar.memory_mb())
        return result
    finally:
        greeter.stop()
        sidecar.stop()


# What each run reports: key, column header, cell format.
COLUMNS = (("throughput", "calls/s", "{:,.0f}"), ("p50_us", "p50 µs", "{:,.0f}"),
           ("p99_us", "p99 µs", "{:,.0f}"),
           ("sidecar_cpu_us_per_call", "sidecar CPU per call µs", "{:,.0f}"),
           ("greeter_cpu_us_per_call", "greeter CPU per call µs", "{:,.0f}"),
           ("rss_mb", "RSS MB", "{:.1f}"))
KEYS = tuple(key for key, _, _ in COLUMNS)


def summarize(builds, pairs):
    """Per build: medians over its runs; per build after the first: the median of its per-pair
    ratios to the first build."""
    first = builds[0][0]
    summary = {}
    for name, *_ in builds:
        runs = [pair[name] for pair in pairs]
        row = {key: statistics.median(r[key] for r in runs) for key in KEYS}
        if name != first:
            row["ratios"] = {key: statistics.median(pair[name][key] / pair[first][key]
                                                    for pair in pairs if pair[first][key])
                             for key in KEYS}
        summary[name] = row
    return summary


def markdown(results):
    lines = [f"A/B of callmeshd builds, {results['started']} → {results['finished']}; "
             f"{results['pairs']} pairs of {results['seconds']} s per load, the order reversed "
             "every other pair; medians.", "",
             f"- Machine: {results['machine']}; load average at start / end: "
             f"{results['load_start']} / {results['load_end']}.",
             "- Builds: " + "; ".join(f"{name} = `{path}`" + (f" (env {env})" if env else "")
                                      + (f" (config `{config}`)" if config else "")
                                      for name, path, env, config in results["builds"]), ""]
    first = results["builds"][0][0]
    for level in results["levels"]:
        lines += [f"**{results['workload']}, {level['in_flight']} in flight**", "",
                  "| build | " + " | ".join(header for _, header, _ in COLUMNS) + " |",
                  "|---|" + "---:|" * len(COLUMNS)]
        for name, row in level["summary"].items():
            cells = [fmt.format(row[key]) for key, _, fmt in COLUMNS]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
            if "ratios" in row:
                ratios = [f"{row['ratios'][key]:.2f}×" for key in KEYS]
                lines.append(f"| {name} ÷ {first}, median of the pairs' ratios | " +
                             " | ".join(ratios) + " |")
        lines.append("")
        per_pair = (" vs ".join(f"{pair[name]['throughput']:,.0f}/s "
                                f"{pair[name]['sidecar_cpu_us_per_call']:.0f} µs"
                                for name, *_ in results["builds"]) for pair in level["pairs"])
        lines.append("Per pair (calls/s; sidecar CPU per call): " + "; ".join(per_pair))
        lines.append("")
    return "\n".join(lines)


def parse_builds(args):
    builds = []
    envs = {}
    for spec in args.env:
        name, _, assignment = spec.partition("=")
        key, sep, value = assignment.partition("=")
        if not name or not sep:
            sys.exit(f"ab.py: --env wants BUILD=KEY=VALUE, got '{spec}'")
        envs.setdefault(name, {})[key] = value
    configs = {}
    for spec in args.config:
        name, sep, path = spec.partition("=")
        if not name or not sep or not os.path.isfile(path):
            sys.exit(f"ab.py: --config wants BUILD=PATH of a readable file, got '{spec}'")
        configs[name] = os.path.abspath(path)
    for spec in args.callmeshd:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            sys.exit(f"ab.py: --callmeshd wants NAME=PATH, got '{spec}'")
        if not os.access(path, os.X_OK):
            sys.exit(f"ab.py: {name}: {path} is not an executable file")
        builds.append((name, path, envs.pop(name, None), configs.pop(name, None)))
    if len(builds) < 2:
        sys.exit("ab.py: name at least two builds (--callmeshd NAME=PATH, twice or more)")
    if len({build[0] for build in builds}) != len(builds):
        sys.exit("ab.py: two builds have the same name")
    if envs or configs:
        sys.exit("ab.py: --env or --config names a build that --callmeshd does not: "
                 + ", ".join(set(envs) | set(configs)))
    return builds


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--callmeshd", action="append", default=[], metavar="NAME=PATH",
                        help="a build to compare (twice or more; the first is the reference)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=KEY=VALUE",
                        help="an environment variable for one build's callmeshd")
    parser.add_argument("--config", action="append", default=[], metavar="NAME=PATH",
                        help="a sidecar config file (callmeshd --config) for one build; the same "
                             "binary may be named twice, with and without a setting")
    parser.add_argument("--workload", choices=WORKLOADS, default="e2e")
    parser.add_argument("--in-flight", type=int, action="append", metavar="N",
                        help="calls in flight (repeatable; default 64 and 1)")
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--bin-dir", help="bazel-bin of `bazel build -c opt` (default: ask bazel)")
    args = parser.parse_args()
    if args.pairs < 1 or args.seconds < 1:
        sys.exit("ab.py: --pairs and --seconds must be at least 1")
    builds = parse_builds(args)
    bin_dir = args.bin_dir or run.bazel_bin()
    binaries = {"greeter_server": f"{bin_dir}/services/greeter/greeter_server",
                "load_client": f"{bin_dir}/bench/load/load_client",
                "async_load": f"{bin_dir}/bench/async/async_load"}
    for name, path in binaries.items():
        if not os.access(path, os.X_OK):
            sys.exit(f"ab.py: {path} is missing: bazel build -c opt //services/greeter:"
                     "greeter_server //bench/load:load_client //bench/async:async_load")
    results = {"started": datetime.datetime.now().isoformat(timespec="seconds"),
               "machine": f"{os.cpu_count()} CPUs", "workload": args.workload,
               "pairs": args.pairs, "seconds": args.seconds,
               "builds": [list(build) for build in builds],
               "load_start": " ".join(open("/proc/loadavg").read().split()[:3]), "levels": []}
    with tempfile.TemporaryDirectory(prefix="callmesh-ab-") as workdir:
        for in_flight in args.in_flight or [64, 1]:
            pairs = []
            for p in range(args.pairs):
                order = builds if p % 2 == 0 else builds[::-1]
                pair = {}
                for name, path, env, config in order:
                    tag = f"{name}-{in_flight}-{p}"
                    pair[name] = one_run(binaries, path, env, config, workdir, tag, args.workload,
                                         in_flight, args.seconds)
                    print(f"  pair {p + 1}/{args.pairs} {in_flight} in flight {name}: "
                          f"{pair[name]['throughput']:,.0f}/s p50 {pair[name]['p50_us']:,.0f}us "
                          f"sidecar CPU {pair[name]['sidecar_cpu_us_per_call']:.0f}us/call "
                          f"RSS {pair[name]['rss_mb']:.1f} MB", flush=True)
                pairs.append(pair)
            results["levels"].append({"in_flight": in_flight, "pairs": pairs,
                                      "summary": summarize(builds, pairs)})
    results["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
    results["load_end"] = " ".join(open("/proc/loadavg").read().split()[:3])
    out = os.path.join(run.ROOT, "bench", "results",
                       datetime.datetime.now().strftime("%Y%m%d-%H%M%S") + "-ab")
    with open(out + ".json", "w") as f:
        json.dump(results, f, indent=1)
    with open(out + ".md", "w") as f:
        f.write(markdown(results) + "\n")
    print(markdown(results))
    print(f"wrote {out}.json, .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
