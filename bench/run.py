#!/usr/bin/env python3
"""Runs the callmesh benchmarks side by side and writes bench/results/<timestamp>.{json,md}.

Every scenario starts its own processes on loopback (callmeshd, greeter_server), runs each
configuration --repeat times in alternation (direct, sidecar, direct, sidecar, ...) so machine noise
hits both sides alike, and reports the median of the repeats and the ratio to the baseline.

  bench/run.py                 # everything, 3 repeats of 10 s
  bench/run.py --quick         # 1 repeat of 3 s, for a smoke run
  bench/run.py --only sync     # one scenario

Binaries come from `bazel build -c opt` (run.sh builds them first).
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def bazel_bin():
    return subprocess.check_output(["bazel", "info", "-c", "opt", "bazel-bin"], cwd=ROOT,
                                   stderr=subprocess.DEVNULL, text=True).strip()


class Proc:
    """A background process that writes its bound address to a ready file."""

    def __init__(self, args, workdir, name):
        self.name = name
        self.ready = os.path.join(workdir, name + ".ready")
        self.log = open(os.path.join(workdir, name + ".log"), "w")
        self.popen = subprocess.Popen(args + ["--ready-file=" + self.ready], stdout=self.log,
                                      stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while not (os.path.exists(self.ready) and os.path.getsize(self.ready) > 0):
            if self.popen.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"{name} did not start; see {self.log.name}")
            time.sleep(0.05)
        self.address = open(self.ready).read().strip()

    def cpu_seconds(self):
        fields = open(f"/proc/{self.popen.pid}/stat").read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime

    def rss_mb(self):
        for line in open(f"/proc/{self.popen.pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self):
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
        self.log.close()


def load(binary, mode, address, in_flight=1, rate=0, seconds=10, label=""):
    out = subprocess.check_output(
        [binary, f"--mode={mode}", f"--address={address}", f"--in_flight={in_flight}",
         f"--rate={rate}", f"--duration={seconds}s", f"--label={label}"], text=True)
    for line in out.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError("load_client printed no RESULT line:\n" + out)


def h2load_grpc(address, path, body, clients, streams, requests, extra_headers=()):
    """Cross-check with nghttp2's h2load: gRPC is HTTP/2 POST with a 5-byte framed body."""
    if shutil.which("h2load") is None:
        return None
    with tempfile.NamedTemporaryFile(delete=False) as f:
        f.write(b"\x00" + len(body).to_bytes(4, "big") + body)
        data = f.name
    args = ["h2load", "-n", str(requests), "-c", str(clients), "-m", str(streams), "-d", data,
            "-H", "content-type: application/grpc", "-H", "te: trailers"]
    for header in extra_headers:
        args += ["-H", header]
    out = subprocess.run(args + [f"http://{address}{path}"], capture_output=True, text=True).stdout
    os.unlink(data)
    match = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    ok = re.search(r"status codes: (\d+) 2xx", out)
    return {"rps": float(match.group(1)) if match else None,
            "ok": int(ok.group(1)) if ok else None}


def hello_request_bytes(size):
    # greeter.v1.HelloRequest{name = "x" * size}: field 1, length-delimited.
    def varint(n):
        out = bytearray()
        while True:
            byte = n & 0x7F
            n >>= 7
            out.append(byte | (0x80 if n else 0))
            if not n:
                return bytes(out)
    return b"\x0a" + varint(size) + b"x" * size


def median_of(runs, key):
    return statistics.median(run[key] for run in runs)


def scenario_sync(binaries, workdir, repeat, seconds):
    """Direct unary gRPC to the greeter vs the same call through the sidecar."""
    sidecar = Proc([binaries["callmeshd"], "--listen=127.0.0.1:0", "--log-level=warn",
                    f"--data-dir={workdir}/data"], workdir, "callmeshd")
    greeter = Proc([binaries["greeter_server"], "--listen=127.0.0.1:0",
                    f"--sidecar={sidecar.address}"], workdir, "greeter")
    rows = []
    try:
        configs = [("one in flight", dict(in_flight=1)),
                   ("paced 1k rps", dict(rate=1000, in_flight=1)),
                   ("paced 5k rps", dict(rate=5000, in_flight=1)),
                   ("saturated, 64 in flight", dict(in_flight=64))]
        for name, kwargs in configs:
            runs = {"direct": [], "proxy": [], "invoke": []}
            cpu = []
            for _ in range(repeat):
                for mode in runs:
                    address = greeter.address if mode == "direct" else sidecar.address
                    before = sidecar.cpu_seconds()
                    result = load(binaries["load_client"], mode, address, seconds=seconds,
                                  label=f"{name}/{mode}", **kwargs)
                    if mode != "direct":
                        result["sidecar_cpu_s_per_s"] = (sidecar.cpu_seconds() - before) / seconds
                    runs[mode].append(result)
                    print("  ", name, mode, f"{result['throughput']:.0f}/s",
                          f"p50 {result['p50_us']:.0f}us p99 {result['p99_us']:.0f}us", flush=True)
            base = runs["direct"]
            for mode, results in runs.items():
                row = {"scenario": "sync", "config": name, "mode": mode,
                       "runs": results,
                       "throughput": median_of(results, "throughput"),
                       "p50_us": median_of(results, "p50_us"),
                       "p90_us": median_of(results, "p90_us"),
                       "p99_us": median_of(results, "p99_us"),
                       "p999_us": median_of(results, "p999_us"),
                       "errors": sum(sum(r["errors"].values()) for r in results)}
                row["throughput_ratio"] = row["throughput"] / median_of(base, "throughput")
                row["added_p50_us"] = row["p50_us"] - median_of(base, "p50_us")
                row["added_p99_us"] = row["p99_us"] - median_of(base, "p99_us")
                if mode != "direct":
                    row["sidecar_cpu_s_per_s"] = median_of(results, "sidecar_cpu_s_per_s")
                rows.append(row)
        body = hello_request_bytes(1024)
        for mode, address, headers in (("direct", greeter.address, ()),
                                       ("proxy", sidecar.address, ("callmesh-target: greeter",))):
            check = h2load_grpc(address, "/greeter.v1.Greeter/SayHello", body, clients=4,
                                streams=16, requests=100000 if seconds >= 10 else 20000,
                                extra_headers=headers)
            if check:
                rows.append({"scenario": "sync", "config": "h2load 4 conns x 16 streams",
                             "mode": mode, "throughput": check["rps"], "ok": check["ok"]})
        rows.append({"scenario": "sync", "config": "sidecar RSS after the runs", "mode": "proxy",
                     "rss_mb": sidecar.rss_mb()})
    finally:
        greeter.stop()
        sidecar.stop()
    return rows


def markdown(results):
    lines = [f"Run {results['started']} on {results['machine']['cpus']} CPUs "
             f"({results['machine']['cpu_model']}), {results['machine']['kernel']}; "
             f"{results['repeat']} repeats of {results['seconds']} s, medians.", ""]
    lines += ["| scenario | configuration | path | calls/s | × baseline | p50 µs | p99 µs | "
              "p99.9 µs | added p50 µs | added p99 µs | sidecar CPU s/s | errors |",
              "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def fmt(value, digits=0):
        return "" if value is None else f"{value:,.{digits}f}"
    for row in results["rows"]:
        if "rss_mb" in row:
            lines.append(f"| {row['scenario']} | {row['config']} | {row['mode']} | | | | | | | | | "
                         f"RSS {row['rss_mb']:.1f} MB |")
            continue
        direct = row["mode"] == "direct"
        lines.append("| " + " | ".join([
            row["scenario"], row["config"], row["mode"], fmt(row.get("throughput")),
            fmt(row.get("throughput_ratio"), 2), fmt(row.get("p50_us")), fmt(row.get("p99_us")),
            fmt(row.get("p999_us")), "" if direct else fmt(row.get("added_p50_us")),
            "" if direct else fmt(row.get("added_p99_us")),
            fmt(row.get("sidecar_cpu_s_per_s"), 2), fmt(row.get("errors"))]) + " |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="1 repeat of 3 s")
    parser.add_argument("--only", choices=["sync"], action="append")
    args = parser.parse_args()
    if args.quick:
        args.repeat, args.seconds = 1, 3
    bin_dir = bazel_bin()
    binaries = {"callmeshd": f"{bin_dir}/runtime/sidecar/callmeshd",
                "greeter_server": f"{bin_dir}/services/greeter/greeter_server",
                "load_client": f"{bin_dir}/bench/load/load_client"}
    cpu_model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                      if l.startswith("model name")), platform.processor())
    results = {"started": datetime.datetime.now().isoformat(timespec="seconds"),
               "machine": {"cpus": os.cpu_count(), "cpu_model": cpu_model,
                           "kernel": platform.release()},
               "repeat": args.repeat, "seconds": args.seconds, "rows": []}
    scenarios = {"sync": scenario_sync}
    for name in args.only or list(scenarios):
        print(f"== scenario {name}", flush=True)
        with tempfile.TemporaryDirectory(prefix=f"callmesh-bench-{name}-") as workdir:
            results["rows"] += scenarios[name](binaries, workdir, args.repeat, args.seconds)
    out_dir = os.path.join(ROOT, "bench", "results")
    os.makedirs(out_dir, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    with open(os.path.join(out_dir, stamp + ".json"), "w") as f:
        json.dump(results, f, indent=1)
    table = markdown(results)
    with open(os.path.join(out_dir, stamp + ".md"), "w") as f:
        f.write(table)
    print(table)
    print(f"wrote bench/results/{stamp}.json and .md")


if __name__ == "__main__":
    sys.exit(main())
