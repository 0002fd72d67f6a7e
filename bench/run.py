#!/usr/bin/env python3
"""Runs the callmesh benchmarks side by side and writes bench/results/<timestamp>.{json,md,png}.

Every scenario starts its own processes on loopback (callmeshd, greeter_server, rabbitmq-server,
nats-server and the broker clients), runs each configuration --repeat times in alternation
(baseline, callmesh, baseline, callmesh, ...) so machine noise hits both sides alike, and reports
the median of the repeats and the ratio to the baseline.

Scenarios (see bench/README.md for how each is measured):
  sync     direct unary gRPC vs the same call through the sidecar (proxy and Invoke)
  accept   durable InvokeAsync accepts/s at 64 in flight vs the disk's serial fsync rate; unary
           RPCs and on one InvokeAsyncStream
  e2e      InvokeAsync accept -> target -> persisted -> callback vs a RabbitMQ RPC round trip;
           unary RPCs and on one InvokeAsyncStream; and the SDK in blocking style
           (Mesh::InvokeAsync + Await, a thread per call in flight)
  nats     sync Invoke vs NATS request-reply
  growth   accept latency and sidecar RSS as pending calls grow (1k, 100k, 1M)
  observability  e2e at 64 in flight with metrics scraped, JSON logs and tracing on vs off
  pubsub   fan-out to 3 subscribing services: callmesh Publish vs RabbitMQ durable fanout vs NATS
           JetStream; callmesh publish/s at 64 in flight vs serial vs the disk's serial fsync/s
  soak     memory over a long run (issue 18): idle and 1k-pending RSS (as growth), then e2e at 64
           in flight for --soak-seconds on a fresh sidecar whose results are purged
           --soak-retention-seconds after delivery, then --soak-cooldown-seconds idle; the
           sidecar's RssAnon/RssFile, CPU and data dir size sampled every 2 s throughout (in the
           .json, drawn in <timestamp>-soak.png); not in the default set (it takes minutes)

  bench/run.py                 # everything, 3 repeats of 10 s
  bench/run.py --quick         # 1 repeat of 3 s, growth to 10k only, for a smoke run
  bench/run.py --only e2e      # one scenario (repeatable)
  bench/run.py --only soak --soak-seconds 180   # memory over a 3-minute run and 90 s after

Binaries come from `bazel build -c opt` (run.sh builds them and passes --bin-dir).
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

    def __init__(self, args, workdir, name, env=None):
        self.name = name
        self.ready = os.path.join(workdir, name + ".ready")
        self.log = open(os.path.join(workdir, name + ".log"), "w")
        self.popen = subprocess.Popen(args + ["--ready-file=" + self.ready], stdout=self.log,
                                      stderr=subprocess.STDOUT,
                                      env=dict(os.environ, **env) if env else None)
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

    def runqueue_wait_seconds(self):
        """Time this process's threads spent runnable but waiting for a CPU (schedstat)."""
        total = 0
        for task in os.listdir(f"/proc/{self.popen.pid}/task"):
            try:
                total += int(open(f"/proc/{self.popen.pid}/task/{task}/schedstat").read().split()[1])
            except (OSError, IndexError, ValueError):
                pass
        return total / 1e9

    def memory_mb(self):
        """VmRSS split into RssAnon (heap, stacks) and RssFile (mapped libraries and files)."""
        fields = {}
        for line in open(f"/proc/{self.popen.pid}/status"):
            key = line.split(":", 1)[0]
            if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem", "Threads"):
                fields[key] = int(line.split()[1])
        return {"rss_mb": fields.get("VmRSS", 0) / 1024,
                "rss_anon_mb": fields.get("RssAnon", 0) / 1024,
                "rss_file_mb": fields.get("RssFile", 0) / 1024, "threads": fields.get("Threads")}

    def stop(self):
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
        self.log.close()


def load(binary, mode, address, in_flight=1, rate=0, seconds=10, label="", env=None, **flags):
    out = subprocess.check_output(
        [binary, f"--mode={mode}", f"--address={address}", f"--in_flight={in_flight}",
         f"--rate={rate}", f"--duration={seconds}s", f"--label={label}"] +
        [f"--{k}={v}" for k, v in flags.items()], text=True,
        env=dict(os.environ, **env) if env else None)
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
                    waited = sidecar.runqueue_wait_seconds()
                    result = load(binaries["load_client"], mode, address, seconds=seconds,
                                  label=f"{name}/{mode}", **kwargs)
                    if mode != "direct":
                        result["sidecar_cpu_s_per_s"] = (sidecar.cpu_seconds() - before) / seconds
                        result["sidecar_runqueue_wait_ms_per_s"] = (
                            sidecar.runqueue_wait_seconds() - waited) / seconds * 1000
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
                    row["sidecar_runqueue_wait_ms_per_s"] = median_of(
                        results, "sidecar_runqueue_wait_ms_per_s")
                rows.append(row)
        body = hello_request_bytes(1024)
        for mode, address, headers in (("direct", greeter.address, ()),
                                       ("proxy", sidecar.address, ("callmesh-target: greeter",))):
            requests = 100000 if seconds >= 10 else 20000
            cpu_before = (sidecar.cpu_seconds(), greeter.cpu_seconds())
            check = h2load_grpc(address, "/greeter.v1.Greeter/SayHello", body, clients=4,
                                streams=16, requests=requests, extra_headers=headers)
            if check:
                # CPU per call of each server process: where the two cores went.
                sidecar_us = (sidecar.cpu_seconds() - cpu_before[0]) / requests * 1e6
                greeter_us = (greeter.cpu_seconds() - cpu_before[1]) / requests * 1e6
                rows.append({"scenario": "sync", "config": "h2load 4 conns x 16 streams",
                             "mode": mode, "throughput": check["rps"], "ok": check["ok"],
                             "cpu_us_per_call": {"sidecar": sidecar_us, "greeter": greeter_us}})
                print("   h2load", mode, f"{check['rps']:.0f}/s; CPU per call: sidecar "
                      f"{sidecar_us:.0f} us, greeter {greeter_us:.0f} us", flush=True)
        rows.append({"scenario": "sync", "config": "sidecar RSS after the runs", "mode": "proxy",
                     "rss_mb": sidecar.rss_mb()})
    finally:
        greeter.stop()
        sidecar.stop()
    return rows


def run_result(args, timeout=180, env=None):
    """Runs a load binary and returns its RESULT json."""
    out = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                         env=dict(os.environ, **env) if env else None)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"{args[0]} printed no RESULT line:\n{out.stdout}\n{out.stderr}")


def summarize(scenario, config, mode, results, base=None, extra_keys=()):
    """One table row: medians of the repeats, and ratios to the baseline's medians."""
    row = {"scenario": scenario, "config": config, "mode": mode, "runs": results}
    for key in ("throughput", "p50_us", "p90_us", "p99_us", "p999_us") + tuple(extra_keys):
        values = [r[key] for r in results if r.get(key) is not None]
        row[key] = statistics.median(values) if values else None
    row["errors"] = sum(sum(r.get("errors", {}).values()) for r in results)
    if base is not None and base.get("throughput"):
        row["throughput_ratio"] = row["throughput"] / base["throughput"]
        if base.get("p50_us") and row.get("p50_us"):
            row["p50_ratio"] = row["p50_us"] / base["p50_us"]
            row["added_p50_us"] = row["p50_us"] - base["p50_us"]
            row["added_p99_us"] = row["p99_us"] - base["p99_us"]
    elif base is None:
        row["throughput_ratio"] = 1.0
    return row


def print_run(name, mode, result):
    print("  ", name, mode, f"{result['throughput']:.0f}/s",
          f"p50 {result.get('p50_us') or 0:.0f}us p99 {result.get('p99_us') or 0:.0f}us"
          + (f" machine CPU {result['machine_cpu_us_per_call']:.0f}us/call"
             if result.get("machine_cpu_us_per_call") else ""),
          flush=True)


def fsync_probe(directory, seconds, block=1024):
    """The disk's serial fsync rate: append `block` bytes and fdatasync, one after the other, in
    a file in `directory` (the sidecar's data dir), like a write-ahead log without batching."""
    path = os.path.join(directory, "fsync-probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    data = b"x" * block
    latencies = []
    end = time.perf_counter() + seconds
    try:
        while time.perf_counter() < end:
            start = time.perf_counter()
            os.write(fd, data)
            os.fdatasync(fd)
            latencies.append((time.perf_counter() - start) * 1e6)
    finally:
        os.close(fd)
        os.unlink(path)
    latencies.sort()

    def pct(p):
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))]
    return {"throughput": len(latencies) / seconds, "p50_us": pct(50), "p90_us": pct(90),
            "p99_us": pct(99), "p999_us": pct(99.9), "errors": {}}


def start_mesh(binaries, workdir, tag, config=None, env=None):
    """callmeshd (with `env` added to its environment) with a fresh data dir, and the greeter
    registered with it."""
    data_dir = os.path.join(workdir, f"data-{tag}")
    os.makedirs(data_dir, exist_ok=True)
    args = [binaries["callmeshd"], "--listen=127.0.0.1:0", "--log-level=warn",
            f"--data-dir={data_dir}"]
    if config:
        args.append(f"--config={config}")
    sidecar = Proc(args, workdir, f"callmeshd-{tag}", env=env)
    try:
        greeter = Proc([binaries["greeter_server"], "--listen=127.0.0.1:0",
                        f"--sidecar={sidecar.address}"], workdir, f"greeter-{tag}")
    except Exception:
        sidecar.stop()
        raise
    time.sleep(0.5)  # registration propagated
    return sidecar, greeter, data_dir


MACHINE_CPU_KEYS = ("machine_cpu_us_per_call", "machine_busy_cores")


def with_sidecar_cpu(sidecar, run):
    """run()'s result, with the sidecar's CPU seconds per second of the run added to it
    (sidecar_cpu_s_per_s)."""
    cpu, wall = sidecar.cpu_seconds(), time.time()
    result = run()
    result["sidecar_cpu_s_per_s"] = (sidecar.cpu_seconds() - cpu) / (time.time() - wall)
    return result


def machine_busy_seconds():
    """CPU seconds the whole machine has spent busy since boot (/proc/stat: everything but idle
    and iowait, over all CPUs)."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:9]
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields)
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def with_machine_cpu(run):
    """run()'s result, with the CPU the whole machine spent per completed call added to it
    (machine_cpu_us_per_call): every process of the side under test (brokers, servers, clients,
    the sidecar) and the kernel's work for them, which is what bounds calls/s once the CPUs are
    full. Measured over the whole run (its warm-up too) against its throughput, so meaningful on
    an otherwise quiet machine only (run.py holds the benchmark lock; other load shows up here)."""
    cpu, wall = machine_busy_seconds(), time.time()
    result = run()
    busy_cores = (machine_busy_seconds() - cpu) / (time.time() - wall)
    result["machine_busy_cores"] = busy_cores
    if result.get("throughput"):
        result["machine_cpu_us_per_call"] = busy_cores / result["throughput"] * 1e6
    return result


def async_load(binaries, sidecar, mode, in_flight, seconds, label, env=None, **flags):
    args = [binaries["async_load"], f"--mode={mode}", f"--sidecar={sidecar}",
            f"--in_flight={in_flight}", f"--duration={seconds}s", f"--label={label}"]
    args += [f"--{k}={v}" for k, v in flags.items()]
    return run_result(args, timeout=seconds + 120 if not flags.get("count") else 3600, env=env)


def settled_memory(sidecar):
    """memory_mb() under settled_ keys: the growth scenario's second sample."""
    return {"settled_" + key: value for key, value in sidecar.memory_mb().items()
            if key.startswith("rss")}


def parked_config(workdir, max_pending):
    """A sidecar config whose service "blackhole" has nothing listening at its address, so calls
    to it are accepted and then parked (no attempt runs); with a day's deadline they stay."""
    config = os.path.join(workdir, "parked.yaml")
    with open(config, "w") as f:
        f.write(f"""# Calls to "blackhole" stay pending: nothing listens at its address, the
# retry policy waits an hour between attempts, and the call deadline is a day away.
services:
  - name: blackhole
    addresses: ["127.0.0.1:{free_port()}"]
    retry: {{max_attempts: 1000000, initial_backoff: 1h, max_backoff: 1h}}
default_call_timeout: 24h
limits:
  max_pending_calls: {max_pending}
""")
    return config


def scenario_accept(binaries, workdir, repeat, seconds, options):
    """Durable InvokeAsync accepts/s through the RPC at 64 in flight, vs serial fsyncs of the same
    directory measured right before, each on a fresh sidecar and data dir. Two targets: the
    greeter (the sidecar also runs every accepted call meanwhile) and a parked service (nothing
    runs: the accept path alone). Each as unary InvokeAsync RPCs and on one InvokeAsyncStream
    (async_load --stream)."""
    config = parked_config(workdir, 10000000)
    fsync = []
    runs = {(target, stream): [] for target in ("greeter", "blackhole") for stream in (False, True)}
    for i in range(repeat):
        for target, stream in runs:
            tag = f"accept-{target}{'-stream' if stream else ''}{i}"
            sidecar, greeter, data_dir = start_mesh(binaries, workdir, tag, config)
            try:
                fsync.append(fsync_probe(data_dir, min(seconds, 5)))
                print_run("serial fsync", "probe", fsync[-1])
                flags = {"stream": "true"} if stream else {}
                result = async_load(binaries, sidecar.address, "accept", 64, seconds,
                                    f"accept to {target}", service=target, timeout="24h", **flags)
                result["sidecar_rss_mb"] = sidecar.rss_mb()
                runs[(target, stream)].append(result)
                print_run(f"InvokeAsync accepts to {target}, 64 in flight",
                          ACCEPT_SIDES[stream], result)
            finally:
                greeter.stop()
                sidecar.stop()
                shutil.rmtree(data_dir, ignore_errors=True)
    base = summarize("accept", "serial write+fdatasync, 1 KiB, same dir", "fsync probe", fsync)
    rows = [base]
    for target, config_name in (("greeter", "calls run on the greeter"),
                                ("blackhole", "calls parked: accept path only")):
        for stream in (False, True):
            rows.append(summarize("accept", f"InvokeAsync accepts, 64 in flight ({config_name})",
                                  ACCEPT_SIDES[stream], runs[(target, stream)], base,
                                  extra_keys=("sidecar_rss_mb",)))
    return rows


# The two ways a client makes durable calls: one unary InvokeAsync RPC per call, or all of them on
# one Sidecar.InvokeAsyncStream (async_load --stream). Keyed by "on the stream".
ACCEPT_SIDES = {False: "callmesh", True: "callmesh stream"}
E2E_SIDES = {False: "callmesh InvokeAsync+callback", True: "callmesh InvokeAsyncStream+callback"}
# One thread per call in flight, each looping on Mesh::InvokeAsync + Mesh::Await (await_load).
E2E_AWAIT_SIDE = "callmesh SDK InvokeAsync+Await, a thread per call"
E2E_FLOOR_SIDE = "floor of the guarantees: 2 serial fsyncs + 2 direct gRPC round trips"


def e2e_floor(binaries, greeter, data_dir, seconds):
    """What the guarantees alone cost an async call at one in flight, from two probes on this
    machine now: the accept's fsync must end before the attempt starts (a refused call never
    reaches the target), and the outcome's fsync before it is delivered; around them the request
    comes in and the completion goes out (about one round trip), and the target is called (one
    round trip). So p50 ≈ 2 × a serial fsync's p50 + 2 × a direct unary gRPC call's p50 (to the
    greeter, through nothing). RabbitMQ's RPC has at most one fsync on its path: the broker hands a
    message to the consumer before it confirms it to the publisher (bench/README "Round six")."""
    fsync = fsync_probe(data_dir, seconds)
    direct = load(binaries["load_client"], "direct", greeter.address, seconds=seconds,
                  label="e2e floor/direct")
    return {"throughput": None, "p50_us": 2 * fsync["p50_us"] + 2 * direct["p50_us"],
            "fsync_p50_us": fsync["p50_us"], "direct_p50_us": direct["p50_us"], "errors": {}}


class RabbitMQ:
    """rabbit-server on loopback with private ports, data, logs and epmd; stopped by stop()."""

    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "rabbitmq")
        os.makedirs(self.dir, exist_ok=True)
        self.port, self.dist_port, self.epmd_port = free_port(), free_port(), free_port()
        with open(os.path.join(self.dir, "rabbitmq.conf"), "w") as f:
            f.write(f"listeners.tcp.default = 127.0.0.1:{self.port}\n")
        with open(os.path.join(self.dir, "enabled_plugins"), "w") as f:
            f.write("[].\n")
        open(os.path.join(self.dir, "env"), "w").close()
        self.env = dict(os.environ, HOME=self.dir,
                        RABBITMQ_MNESIA_BASE=os.path.join(self.dir, "mnesia"),
                        RABBITMQ_LOG_BASE=os.path.join(self.dir, "log"),
                        RABBITMQ_NODE_PORT=str(self.port), RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
                        RABBITMQ_DIST_PORT=str(self.dist_port),
                        RABBITMQ_NODENAME=f"callmeshbench{self.port}@localhost",
                        ERL_EPMD_PORT=str(self.epmd_port), ERL_EPMD_ADDRESS="127.0.0.1",
                        RABBITMQ_CONFIG_FILE=os.path.join(self.dir, "rabbitmq"),
                        RABBITMQ_ADVANCED_CONFIG_FILE=os.path.join(self.dir, "advanced.config"),
                        RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(self.dir, "enabled_plugins"),
                        RABBITMQ_CONF_ENV_FILE=os.path.join(self.dir, "env"),
                        RABBITMQ_PID_FILE=os.path.join(self.dir, "pid"))
        self.log = open(os.path.join(self.dir, "server.log"), "w")
        self.popen = subprocess.Popen(["/usr/lib/rabbitmq/bin/rabbitmq-server"], env=self.env,
                                      stdout=self.log, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        wait_port(self.port, 120, self.popen, "rabbitmq-server")
        time.sleep(1)

    def beam_pid(self):
        try:
            return int(open(os.path.join(self.dir, "pid")).read().strip())
        except (OSError, ValueError):
            return None

    def stop(self):
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        epmd = shutil.which("epmd") or "epmd"
        subprocess.run([epmd, "-kill"], env=self.env, capture_output=True)
        self.log.close()


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, seconds, popen, name):
    import socket
    deadline = time.time() + seconds
    while time.time() < deadline:
        if popen.poll() is not None:
            raise RuntimeError(f"{name} exited with {popen.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{name} did not listen on {port} within {seconds} s")


class Plain:
    """A background process without a ready file (broker clients)."""

    def __init__(self, args, workdir, name, env=None):
        self.log = open(os.path.join(workdir, name + ".log"), "w")
        self.popen = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env)

    def stop(self):
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.log.close()


def scenario_e2e(binaries, workdir, repeat, seconds, options):
    """callmesh InvokeAsync with a callback vs a durable RabbitMQ RPC, same concurrency."""
    sidecar, greeter, data_dir = start_mesh(binaries, workdir, "e2e")
    rabbit = server = None
    rows = []
    try:
        rabbit = RabbitMQ(workdir)
        for in_flight in (1, 64):
            server = Plain([binaries["rabbit_rpc"], "server", f"--port={rabbit.port}",
                            f"--prefetch={in_flight}"], workdir, f"rabbit-server-{in_flight}")
            time.sleep(0.5)
            name = f"{in_flight} in flight"
            runs = {"rabbitmq": [], False: [], True: [], "await": [], "floor": []}
            # The SDK in blocking style (bench/async/await_load), when the binaries have it.
            awaiting = os.path.exists(binaries.get("await_load", ""))
            for _ in range(repeat):
                result = with_machine_cpu(lambda: run_result(
                    [binaries["rabbit_rpc"], "client", f"--port={rabbit.port}",
                     f"--in-flight={in_flight}", f"--duration={seconds}", "--warmup=1",
                     f"--label=e2e {name}"], timeout=seconds + 60))
                runs["rabbitmq"].append(result)
                print_run(name, "rabbitmq", result)
                for stream in (False, True):
                    flags = {"stream": "true"} if stream else {}
                    result = with_machine_cpu(lambda: with_sidecar_cpu(sidecar, lambda: async_load(
                        binaries, sidecar.address, "e2e", in_flight, seconds, f"e2e {name}",
                        **flags)))
                    runs[stream].append(result)
                    print_run(name, E2E_SIDES[stream], result)
                if awaiting:
                    result = with_sidecar_cpu(sidecar, lambda: run_result(
                        [binaries["await_load"], f"--sidecar={sidecar.address}",
                         f"--in-flight={in_flight}", f"--duration={seconds}s",
                         f"--label=e2e {name}"], timeout=seconds + 120))
                    runs["await"].append(result)
                    print_run(name, E2E_AWAIT_SIDE, result)
                if in_flight == 1:
                    result = e2e_floor(binaries, greeter, data_dir, min(seconds, 5))
                    runs["floor"].append(result)
                    print(f"   {name} {E2E_FLOOR_SIDE}: p50 {result['p50_us']:.0f}us (fsync "
                          f"{result['fsync_p50_us']:.0f}us, direct gRPC "
                          f"{result['direct_p50_us']:.0f}us)", flush=True)
            server.stop()
            server = None
            base = summarize("e2e", name, "rabbitmq RPC", runs["rabbitmq"],
                             extra_keys=MACHINE_CPU_KEYS)
            rows.append(base)
            for stream in (False, True):
                rows.append(summarize("e2e", name, E2E_SIDES[stream], runs[stream], base,
                                      extra_keys=("accept_p50_us", "accept_p99_us",
                                                  "sidecar_cpu_s_per_s") + MACHINE_CPU_KEYS))
            if runs["await"]:
                rows.append(summarize("e2e", name, E2E_AWAIT_SIDE, runs["await"], base,
                                      extra_keys=("sidecar_cpu_s_per_s",)))
            if runs["floor"]:
                row = summarize("e2e", name, E2E_FLOOR_SIDE, runs["floor"],
                                extra_keys=("fsync_p50_us", "direct_p50_us"))
                row.pop("throughput_ratio")  # a latency, not a rate
                rows.append(row)
        rows.append({"scenario": "e2e", "config": "sidecar RSS after the runs", "mode": "callmesh",
                     "rss_mb": sidecar.rss_mb()})
    finally:
        if server:
            server.stop()
        if rabbit:
            rabbit.stop()
        greeter.stop()
        sidecar.stop()
    return rows


def secured_mesh(binaries, workdir, tag):
    """callmeshd with TLS on its API, a token and mTLS to the apps it calls, and the greeter
    serving mTLS; certificates made by `callmesh certs`. Returns the sidecar, the greeter and the
    environment of a client app "bench" that sends both its token and its certificate."""
    certs = os.path.join(workdir, f"certs-{tag}")
    cli = binaries["callmesh"]
    subprocess.run([cli, "certs", "init", "--dir", certs], check=True, capture_output=True)
    for args in (["bench-sidecar", "--kind", "sidecar"], ["greeter"], ["bench"]):
        subprocess.run([cli, "certs", "issue"] + args + ["--dir", certs], check=True,
                       capture_output=True)
    token = os.path.join(certs, "bench.token")
    with open(token, "w") as f:
        f.write(os.urandom(24).hex())
    config = os.path.join(workdir, f"secured-{tag}.yaml")
    with open(config, "w") as f:
        f.write("security:\n  tls:\n"
                f"    cert_file: {certs}/sidecar-bench-sidecar.crt\n"
                f"    key_file: {certs}/sidecar-bench-sidecar.key\n"
                f"    ca_file: {certs}/ca.crt\n"
                f"  tokens:\n    - {{app: bench, file: {token}}}\n")
    data_dir = os.path.join(workdir, f"data-{tag}")
    sidecar = Proc([binaries["callmeshd"], "--listen=127.0.0.1:0", "--log-level=warn",
                    f"--data-dir={data_dir}", f"--config={config}"], workdir, f"callmeshd-{tag}")

    def app_env(name):
        return {"CALLMESH_TLS_CA": f"{certs}/ca.crt", "CALLMESH_TLS_CERT": f"{certs}/{name}.crt",
                "CALLMESH_TLS_KEY": f"{certs}/{name}.key"}
    greeter = Proc([binaries["greeter_server"], "--listen=127.0.0.1:0",
                    f"--sidecar={sidecar.address}"], workdir, f"greeter-{tag}",
                   env=app_env("greeter"))
    time.sleep(0.5)  # registration propagated
    return sidecar, greeter, dict(app_env("bench"), CALLMESH_TOKEN_FILE=token)


def scenario_security(binaries, workdir, repeat, seconds, options):
    """The cost of security: Invoke (64 in flight) and InvokeAsync with a callback (64 in flight,
    end to end) through a sidecar with TLS on its API, a token and a client certificate on every
    call, and mTLS to the greeter and to the callback service, vs the same through a plaintext
    sidecar. Both meshes run side by side; the two alternate within each repeat."""
    plain_sidecar, plain_greeter, _ = start_mesh(binaries, workdir, "plain")
    secured_sidecar, secured_greeter, env = secured_mesh(binaries, workdir, "secured")
    rows = []
    try:
        for what in ("Invoke", "InvokeAsync+callback"):
            runs = {"plaintext": [], "mTLS + token": []}
            for _ in range(repeat):
                for side, sidecar, side_env in (("plaintext", plain_sidecar, None),
                                                ("mTLS + token", secured_sidecar, env)):
                    if what == "Invoke":
                        # The source claimed is "bench", the identity of the secured client.
                        run = lambda: load(binaries["load_client"], "invoke", sidecar.address,
                                           in_flight=64, seconds=seconds,
                                           label=f"security {what} {side}", env=side_env,
                                           source="bench")
                    else:
                        # async_load hosts its callback in an SDK ServiceHost, which registers
                        # its name and "<name>-async-callback": as "bench", exactly what the
                        # default registration rule lets the identity "bench" register.
                        run = lambda: async_load(binaries, sidecar.address, "e2e", 64, seconds,
                                                 f"security {what} {side}", env=side_env,
                                                 source="bench", callback_name="bench")
                    result = with_sidecar_cpu(sidecar, run)
                    runs[side].append(result)
                    print_run(f"{what}, 64 in flight", side, result)
            base = summarize("security", f"{what}, 64 in flight", "plaintext",
                             runs["plaintext"], extra_keys=("sidecar_cpu_s_per_s",))
            rows += [base, summarize("security", f"{what}, 64 in flight", "mTLS + token",
                                     runs["mTLS + token"], base,
                                     extra_keys=("sidecar_cpu_s_per_s",))]
    finally:
        for proc in (secured_greeter, secured_sidecar, plain_greeter, plain_sidecar):
            proc.stop()
    return rows


class OtlpSink:
    """A stand-in trace collector: accepts OTLP/HTTP JSON POSTs (200) and counts spans."""

    def __init__(self):
        import http.server
        import threading
        sink = self
        self.spans = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                sink.spans += body.count(b'"spanId"')
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()


class Scraper:
    """Scrapes /metrics every second, as a Prometheus would."""

    def __init__(self, address):
        import threading
        import urllib.request
        self.scrapes = 0
        self.stopping = threading.Event()

        def run():
            while not self.stopping.wait(1.0):
                try:
                    with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as r:
                        r.read()
                    self.scrapes += 1
                except OSError:
                    pass
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def stop(self):
        self.stopping.set()
        self.thread.join()


def scenario_observability(binaries, workdir, repeat, seconds, options):
    """The cost of observability: the e2e path (InvokeAsync -> target -> persisted -> callback)
    at 64 in flight on two sidecars side by side, one with nothing on, one with /metrics scraped
    every second, JSON logs at the default access-log sampling and every span exported to a
    collector, repeats alternating."""
    sink = OtlpSink()
    admin = f"127.0.0.1:{free_port()}"
    config = os.path.join(workdir, "observability.yaml")
    with open(config, "w") as f:
        f.write(f"admin_listen: {admin}\nlog_format: json\ntracing: {{endpoint: '{sink.url}'}}\n")
    off, off_greeter, _ = start_mesh(binaries, workdir, "obs-off")
    on, on_greeter, _ = start_mesh(binaries, workdir, "obs-on", config)
    scraper = Scraper(admin)
    runs = {"off": [], "on": []}
    try:
        for _ in range(repeat):
            for name, sidecar in (("off", off), ("on", on)):
                result = async_load(binaries, sidecar.address, "e2e", 64, seconds,
                                    f"observability {name}")
                runs[name].append(result)
                print_run(f"observability {name}", "callmesh", result)
    finally:
        scraper.stop()
        for process in (off_greeter, on_greeter, off, on):
            process.stop()
        sink.stop()
    base = summarize("observability", "64 in flight, all off", "callmesh InvokeAsync+callback",
                     runs["off"])
    row = summarize("observability",
                    "64 in flight, metrics scraped 1/s + JSON logs + tracing exported",
                    "callmesh InvokeAsync+callback", runs["on"], base)
    row["spans_received"] = sink.spans
    row["scrapes"] = scraper.scrapes
    return [base, row]


def scenario_nats(binaries, workdir, repeat, seconds, options):
    """Sync Invoke through the sidecar vs NATS request-reply, same concurrency."""
    sidecar, greeter, _ = start_mesh(binaries, workdir, "nats")
    port = free_port()
    nats = Plain(["nats-server", "-a", "127.0.0.1", "-p", str(port)], workdir, "nats-server")
    responder = None
    rows = []
    try:
        wait_port(port, 30, nats.popen, "nats-server")
        url = f"nats://127.0.0.1:{port}"
        responder = Plain([binaries["nats_rpc"], "responder", f"--url={url}"], workdir,
                          "nats-responder")
        time.sleep(0.5)
        for in_flight in (1, 64):
            name = f"{in_flight} in flight"
            runs = {"nats": [], "callmesh": []}
            for _ in range(repeat):
                result = run_result([binaries["nats_rpc"], "requester", f"--url={url}",
                                     f"--in-flight={in_flight}", f"--duration={seconds}",
                                     "--warmup=1", f"--label=nats {name}"], timeout=seconds + 60)
                runs["nats"].append(result)
                print_run(name, "nats", result)
                result = with_sidecar_cpu(sidecar, lambda: load(
                    binaries["load_client"], "invoke", sidecar.address, in_flight=in_flight,
                    seconds=seconds, label=f"nats {name}"))
                runs["callmesh"].append(result)
                print_run(name, "callmesh invoke", result)
            base = summarize("nats", name, "nats request-reply", runs["nats"])
            rows += [base, summarize("nats", name, "callmesh Invoke", runs["callmesh"], base,
                                     extra_keys=("sidecar_cpu_s_per_s",))]
    finally:
        if responder:
            responder.stop()
        nats.stop()
        greeter.stop()
        sidecar.stop()
    return rows


def fanout_result(args, timeout):
    """Runs a fan-out client (pubsub_bench, rabbit_fanout, nats_fanout): its RESULT with the
    delivered events/s as `throughput` and the publish acknowledgement latency as p50/p99."""
    result = run_result(args, timeout=timeout)
    result["throughput"] = result["delivered_per_s"]
    result["p50_us"], result["p99_us"] = result["publish_p50_us"], result["publish_p99_us"]
    result["errors"] = {"failed": result["failed"],
                        "undelivered": result["expected"] - result["delivered"]}
    return result


def scenario_pubsub(binaries, workdir, repeat, seconds, options):
    """End-to-end fan-out of 1 KiB events to 3 subscribing services, 64 publishes in flight:
    callmesh (Publish acknowledged once fsync'd, 3 subscribing services served by the generated
    subscriber) vs RabbitMQ (durable fanout exchange, 3 durable queues, persistent messages,
    publisher confirms, manual acks) vs NATS JetStream (file stream, 3 durable consumers, explicit
    acks), in alternation on one machine. Then callmesh publish/s at 64 in flight vs 1 in flight
    vs serial fdatasync of the data dir."""
    data_dir = os.path.join(workdir, "data-pubsub")
    os.makedirs(data_dir, exist_ok=True)
    sidecar = Proc([binaries["callmeshd"], "--listen=127.0.0.1:0", "--log-level=warn",
                    f"--data-dir={data_dir}"], workdir, "callmeshd-pubsub")
    rabbit = nats = None
    rows = []
    try:
        rabbit = RabbitMQ(workdir)
        nats_port = free_port()
        nats = Plain(["nats-server", "-a", "127.0.0.1", "-p", str(nats_port), "-js", "-sd",
                      os.path.join(workdir, "jetstream")], workdir, "nats-server")
        wait_port(nats_port, 30, nats.popen, "nats-server")
        common = [f"--in-flight=64", f"--duration={seconds}", "--subscribers=3",
                  "--payload-bytes=1024"]
        runs = {"rabbitmq": [], "nats": [], "callmesh": []}
        for _ in range(repeat):
            result = fanout_result([binaries["rabbit_fanout"], f"--port={rabbit.port}",
                                    "--label=rabbitmq fanout"] + common, seconds + 180)
            runs["rabbitmq"].append(result)
            print_run("fan-out to 3, 64 in flight", "rabbitmq", result)
            result = fanout_result([binaries["nats_fanout"], f"--port={nats_port}",
                                    "--label=nats jetstream"] + common, seconds + 180)
            runs["nats"].append(result)
            print_run("fan-out to 3, 64 in flight", "nats", result)
            result = with_sidecar_cpu(sidecar, lambda: fanout_result(
                [binaries["pubsub_bench"], f"--sidecar={sidecar.address}", "--label=callmesh"] +
                [a.replace("in-flight", "in_flight").replace("payload-bytes", "payload_bytes")
                 for a in common], seconds + 180))
            runs["callmesh"].append(result)
            print_run("fan-out to 3, 64 in flight", "callmesh", result)
        base = summarize("pubsub", "fan-out to 3 services, 64 in flight, 1 KiB: delivered/s",
                         "rabbitmq durable fanout", runs["rabbitmq"], extra_keys=("publish_per_s",))
        rows += [base,
                 summarize("pubsub", "fan-out to 3 services, 64 in flight, 1 KiB: delivered/s",
                           "nats jetstream (no fsync)", runs["nats"], base,
                           extra_keys=("publish_per_s",)),
                 summarize("pubsub", "fan-out to 3 services, 64 in flight, 1 KiB: delivered/s",
                           "callmesh Publish", runs["callmesh"], base,
                           extra_keys=("publish_per_s", "sidecar_cpu_s_per_s"))]
        # Publish alone on a fresh sidecar (the fan-out's subscriptions are durable): no
        # subscription, 64 in flight vs serial, vs the disk's serial fsync/s.
        sidecar.stop()
        data_dir = os.path.join(workdir, "data-publish")
        os.makedirs(data_dir, exist_ok=True)
        sidecar = Proc([binaries["callmeshd"], "--listen=127.0.0.1:0", "--log-level=warn",
                        f"--data-dir={data_dir}"], workdir, "callmeshd-publish")
        fsync, serial, parallel = [], [], []
        for _ in range(repeat):
            fsync.append(fsync_probe(data_dir, min(seconds, 5)))
            print_run("serial fsync", "probe", fsync[-1])
            for in_flight, into in ((1, serial), (64, parallel)):
                result = run_result([binaries["pubsub_bench"], f"--sidecar={sidecar.address}",
                                     "--subscribers=0", f"--in_flight={in_flight}",
                                     f"--duration={seconds}", "--payload_bytes=1024",
                                     f"--label=publish {in_flight}"], timeout=seconds + 120)
                result["throughput"] = result["publish_per_s"]
                result["p50_us"], result["p99_us"] = (result["publish_p50_us"],
                                                      result["publish_p99_us"])
                into.append(result)
                print_run(f"publish, {in_flight} in flight", "callmesh", result)
        fbase = summarize("pubsub", "serial write+fdatasync, 1 KiB, same dir", "fsync probe",
                          fsync)
        rows += [fbase,
                 summarize("pubsub", "Publish/s, 1 in flight, no subscriber", "callmesh", serial,
                           fbase),
                 summarize("pubsub", "Publish/s, 64 in flight, no subscriber", "callmesh",
                           parallel, fbase)]
    finally:
        if nats:
            nats.stop()
        if rabbit:
            rabbit.stop()
        sidecar.stop()
    return rows


def scenario_growth(binaries, workdir, repeat, seconds, options):
    """InvokeAsync to a service nothing listens on (the calls stay pending), in steps of 1k, 10k,
    100k and 1M pending calls (up to options.growth_max; each step at most
    options.growth_step_seconds, so the last level may be reached only in part); for each step the
    accept latency of its calls, then, after 2 s of quiet, the sidecar's RSS and its CPU use while
    idle with that many calls pending, and its RSS again options.growth_settle_seconds after the
    step (and after start, idle): RocksDB's background work, the purge loop's first flush and the
    allocator's decay come after the 2 s sample and moved RSS by some 3 MB (bench/README.md "Round
    seven")."""
    config = parked_config(workdir, max(2 * options.growth_max, 1000000))
    levels = [n for n in (1000, 10000, 100000, 1000000) if n <= options.growth_max]
    rows = []
    for run in range(options.growth_repeat):
        sidecar, greeter, data_dir = start_mesh(binaries, workdir, f"growth{run}", config)
        try:
            pending = 0
            if run == 0:
                idle = dict({"scenario": "growth", "config": "0 pending (idle)",
                             "mode": "callmesh"}, **sidecar.memory_mb())
                time.sleep(options.growth_settle_seconds)
                idle.update(settled_memory(sidecar))
                rows.append(idle)
            for level in levels:
                started = time.time()
                result = async_load(binaries, sidecar.address, "accept", 64, seconds,
                                    f"growth to {level}", count=level - pending,
                                    service="blackhole", timeout="24h", warmup="0s",
                                    count_time_limit=f"{options.growth_step_seconds}s")
                pending += result["accepted_total"]
                result["wall_s"] = time.time() - started
                time.sleep(2)
                result.update(sidecar.memory_mb())
                cpu_before = sidecar.cpu_seconds()
                time.sleep(3)
                result["idle_cpu_s_per_s"] = (sidecar.cpu_seconds() - cpu_before) / 3
                time.sleep(max(0, options.growth_settle_seconds - 5))
                result.update(settled_memory(sidecar))
                result["pending"] = pending
                result["data_dir_mb"] = sum(
                    os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(data_dir)
                    for f in fs) / 2**20
                print(f"   growth to {pending} pending: {result['throughput']:.0f} accepts/s "
                      f"p50 {result['p50_us']:.0f}us p99 {result['p99_us']:.0f}us "
                      f"RSS {result['rss_mb']:.1f} MB (anon {result['rss_anon_mb']:.1f}), "
                      f"idle CPU {result['idle_cpu_s_per_s']:.2f} s/s, "
                      f"data dir {result['data_dir_mb']:.0f} MB", flush=True)
                name = f"{pending:,} pending" + ("" if pending == level else
                                                 f" (aimed at {level:,}; step time limit)")
                row = summarize("growth", name, "callmesh", [result],
                                extra_keys=("rss_mb", "rss_anon_mb", "rss_file_mb", "settled_rss_mb",
                                            "settled_rss_anon_mb", "settled_rss_file_mb",
                                            "idle_cpu_s_per_s", "data_dir_mb", "wall_s"))
                row["repeat"] = run
                row["pending"] = pending
                row.pop("throughput_ratio", None)  # no baseline here
                rows.append(row)
                if pending < level:
                    break
        finally:
            greeter.stop()
            sidecar.stop()
            shutil.rmtree(data_dir, ignore_errors=True)
    return rows


def directory_mb(path):
    """Bytes of the files under `path`, in MiB (files deleted meanwhile are skipped)."""
    total = 0
    for d, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(d, f))
            except OSError:
                pass
    return total / 2**20


def smaps_summary(pid, top=8):
    """Where a process's resident memory is: /proc/<pid>/smaps Rss summed per mapping kind
    ([heap], [stack], anonymous mappings — thread stacks and malloc arenas —, each file), the
    largest `top` kinds in MB."""
    kinds = {}
    name = None
    try:
        for line in open(f"/proc/{pid}/smaps"):
            fields = line.split()
            if not fields[0].endswith(":") or re.match(r"^[0-9a-f]+-[0-9a-f]+$", fields[0]):
                name = os.path.basename(fields[5]) if len(fields) > 5 else "anonymous"
            elif fields[0] == "Rss:":
                kinds[name] = kinds.get(name, 0) + int(fields[1])
    except OSError:
        return {}
    largest = sorted(kinds.items(), key=lambda kv: -kv[1])[:top]
    return {kind: round(kb / 1024, 1) for kind, kb in largest}


class MemorySampler:
    """Samples a sidecar's RSS (anonymous and file-backed), CPU and data dir size every
    `interval` seconds on a thread, each sample tagged with the phase set by the caller."""

    def __init__(self, sidecar, data_dir, interval=2.0):
        import threading
        self.sidecar, self.data_dir, self.interval = sidecar, data_dir, interval
        self.samples = []
        self.phase = "idle"
        self.started = time.time()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            sample = {"t_s": round(time.time() - self.started, 1), "phase": self.phase}
            sample.update(self.sidecar.memory_mb())
            sample["cpu_s"] = self.sidecar.cpu_seconds()
            sample["data_dir_mb"] = directory_mb(self.data_dir)
            self.samples.append(sample)
            if self.stopping.wait(self.interval):
                return

    def stop(self):
        self.stopping.set()
        self.thread.join()


def soak_config(workdir, retention_s):
    config = os.path.join(workdir, "soak.yaml")
    with open(config, "w") as f:
        f.write(f"# Results are purged {retention_s} s after delivery (the purge runs every "
                f"retention/10, at least 1 s).\nresult_retention: {retention_s}s\n")
    return config


def scenario_soak(binaries, workdir, repeat, seconds, options):
    """Memory over a long run (issue 18): first the growth scenario's idle and 1k-pending RSS on a
    fresh sidecar; then a fresh sidecar with result_retention options.soak_retention_seconds runs
    async_load --mode=e2e at 64 in flight for options.soak_seconds and then idles for
    options.soak_cooldown_seconds, while its RSS (RssAnon, RssFile), CPU and data dir size are
    sampled every 2 s. Reports idle RSS, peak, RSS at the end of the load and after the
    cool-down, and how far above idle the cool-down ends."""
    rows = scenario_growth(binaries, workdir, 1, seconds,
                           argparse.Namespace(growth_max=1000, growth_repeat=1,
                                              growth_step_seconds=options.growth_step_seconds,
                                              growth_settle_seconds=options.growth_settle_seconds))
    config = soak_config(workdir, options.soak_retention_seconds)
    sidecar, greeter, data_dir = start_mesh(binaries, workdir, "soak", config)
    sampler = None
    try:
        time.sleep(3)  # settled after start and registration
        idle = sidecar.memory_mb()
        smaps = {"idle": smaps_summary(sidecar.popen.pid)}
        sampler = MemorySampler(sidecar, data_dir)
        time.sleep(4)
        sampler.phase = "load"
        load_started = time.time() - sampler.started
        cpu = sidecar.cpu_seconds()
        result = async_load(binaries, sidecar.address, "e2e", 64, options.soak_seconds,
                            "soak e2e 64 in flight")
        load_wall = time.time() - sampler.started - load_started
        result["sidecar_cpu_s_per_s"] = (sidecar.cpu_seconds() - cpu) / load_wall
        end_of_load = sidecar.memory_mb()
        end_of_load["data_dir_mb"] = directory_mb(data_dir)
        smaps["end of load"] = smaps_summary(sidecar.popen.pid)
        sampler.phase = "cool-down"
        load_ended = time.time() - sampler.started
        print_run(f"soak e2e 64 in flight, {options.soak_seconds} s", "callmesh", result)
        print(f"   end of load: RSS {end_of_load['rss_mb']:.1f} MB "
              f"(anon {end_of_load['rss_anon_mb']:.1f}); cooling down "
              f"{options.soak_cooldown_seconds} s", flush=True)
        time.sleep(options.soak_cooldown_seconds)
        sampler.stop()
        after = sidecar.memory_mb()
        after["data_dir_mb"] = directory_mb(data_dir)
        smaps["after cool-down"] = smaps_summary(sidecar.popen.pid)
    finally:
        if sampler:
            sampler.stop()
        greeter.stop()
        sidecar.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    samples = sampler.samples
    peak = max(samples, key=lambda s: s["rss_mb"])
    idle_1k = {r["config"]: r["rss_mb"] for r in rows if r["scenario"] == "growth"}
    row = summarize("soak", f"e2e 64 in flight for {options.soak_seconds} s, result_retention "
                    f"{options.soak_retention_seconds} s, then {options.soak_cooldown_seconds} s "
                    "idle", "callmesh InvokeAsync+callback", [result],
                    extra_keys=("sidecar_cpu_s_per_s",))
    row.pop("throughput_ratio", None)  # no baseline here
    row.update({"completed": result.get("calls"), "accepted": result.get("accepted_total"),
                "idle": idle, "peak": {k: peak[k] for k in ("t_s", "rss_mb", "rss_anon_mb",
                                                             "rss_file_mb")},
                "end_of_load": end_of_load, "after_cool_down": after,
                "above_idle_after_cool_down_mb": after["rss_mb"] - idle["rss_mb"],
                "anon_above_idle_after_cool_down_mb": after["rss_anon_mb"] - idle["rss_anon_mb"],
                "peak_data_dir_mb": max(s["data_dir_mb"] for s in samples),
                "growth_idle_rss_mb": idle_1k.get("0 pending (idle)"),
                "growth_1k_pending_rss_mb": idle_1k.get("1,000 pending"),
                "load_started_s": load_started, "load_ended_s": load_ended,
                "retention_s": options.soak_retention_seconds, "smaps_mb": smaps,
                "samples": samples})
    print(f"   soak: idle {idle['rss_mb']:.1f} MB, peak {peak['rss_mb']:.1f}, end of load "
          f"{end_of_load['rss_mb']:.1f}, after cool-down {after['rss_mb']:.1f} MB "
          f"({row['above_idle_after_cool_down_mb']:+.1f} MB vs idle; anon "
          f"{row['anon_above_idle_after_cool_down_mb']:+.1f})", flush=True)
    return rows + [row]


def fmt(value, digits=0):
    return "" if value is None else f"{value:,.{digits}f}"


def markdown(results):
    m = results["machine"]
    v = results["versions"]
    lines = [f"Run {results['started']} → {results['finished']}; {results['repeat']} repeats of "
             f"{results['seconds']} s per configuration, medians of the repeats.", "",
             f"- Machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['memory_gb']:.0f} GB RAM, "
             f"kernel {m['kernel']}; disk: {m['disk']}.",
             f"- Load average at start / end: {m['load_start']} / {m['load_end']}."
             + (f" {results['note']}" if results.get("note") else ""),
             "- Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".", ""]
    lines += ["| scenario | configuration | side | calls/s | × baseline | p50 µs | p90 µs | "
              "p99 µs | p99.9 µs | added p50 µs | added p99 µs | other |",
              "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for row in results["rows"]:
        other = []
        if row.get("sidecar_cpu_s_per_s") is not None:
            other.append(f"sidecar CPU {row['sidecar_cpu_s_per_s']:.2f} s/s")
        if row.get("machine_cpu_us_per_call") is not None:
            other.append(f"whole machine {row['machine_cpu_us_per_call']:.0f} µs CPU per call "
                         f"({row['machine_busy_cores']:.2f} CPUs busy)")
        if row.get("sidecar_runqueue_wait_ms_per_s") is not None:
            other.append(f"sidecar threads waited for a CPU "
                         f"{row['sidecar_runqueue_wait_ms_per_s']:.0f} ms/s")
        if row.get("rss_mb") is not None:
            other.append(f"sidecar RSS {row['rss_mb']:.1f} MB" + (
                f" (anon {row['rss_anon_mb']:.1f}, files {row['rss_file_mb']:.1f})"
                if row.get("rss_anon_mb") is not None else ""))
        if row.get("settled_rss_mb") is not None:
            other.append(f"settled: {row['settled_rss_mb']:.1f} MB (anon "
                         f"{row['settled_rss_anon_mb']:.1f}, files {row['settled_rss_file_mb']:.1f})")
        if row.get("idle_cpu_s_per_s") is not None:
            other.append(f"sidecar CPU while idle {row['idle_cpu_s_per_s']:.2f} s/s")
        if row.get("sidecar_rss_mb") is not None:
            other.append(f"sidecar RSS {row['sidecar_rss_mb']:.1f} MB")
        if row.get("accept_p50_us"):
            other.append(f"accept p50 {row['accept_p50_us']:,.0f} µs, "
                         f"p99 {row['accept_p99_us']:,.0f} µs")
        if row.get("data_dir_mb") is not None:
            other.append(f"data dir {row['data_dir_mb']:,.0f} MB; step took "
                         f"{row['wall_s']:.0f} s")
        if row.get("fsync_p50_us") is not None:
            other.append(f"serial fsync p50 {row['fsync_p50_us']:,.0f} µs, direct gRPC p50 "
                         f"{row['direct_p50_us']:,.0f} µs")
        if row.get("errors"):
            other.append(f"errors {row['errors']}")
        if row.get("samples"):
            other.append(soak_summary(row))
        if row.get("ok") is not None:
            other.append(f"{row['ok']} ok")
        if row.get("cpu_us_per_call"):
            other.append("CPU per call: sidecar {sidecar:.0f} µs, greeter {greeter:.0f} µs".format(
                **row["cpu_us_per_call"]))
        is_base = row["mode"] == "direct" or "added_p50_us" not in row
        lines.append("| " + " | ".join([
            row["scenario"], row["config"], row["mode"], fmt(row.get("throughput")),
            fmt(row.get("throughput_ratio"), 2), fmt(row.get("p50_us")), fmt(row.get("p90_us")),
            fmt(row.get("p99_us")), fmt(row.get("p999_us")),
            "" if is_base else fmt(row.get("added_p50_us")),
            "" if is_base else fmt(row.get("added_p99_us")), "; ".join(other)]) + " |")
    return "\n".join(lines) + "\n"


def soak_summary(row):
    """The soak row's memory figures in one line of the table."""
    def mem(m):
        return f"{m['rss_mb']:.1f} MB (anon {m['rss_anon_mb']:.1f}, files {m['rss_file_mb']:.1f})"
    during_load = max((s for s in row["samples"] if s["phase"] == "load"),
                      key=lambda s: s["rss_mb"])
    text = (f"{row['completed']:,} completions; sidecar RSS idle {mem(row['idle'])}, peak "
            f"{mem(row['peak'])} at {row['peak']['t_s']:.0f} s (during the load "
            f"{mem(during_load)}), end of load "
            f"{mem(row['end_of_load'])}, after the cool-down {mem(row['after_cool_down'])}: "
            f"{row['above_idle_after_cool_down_mb']:+.1f} MB vs idle (anon "
            f"{row['anon_above_idle_after_cool_down_mb']:+.1f}); data dir peak "
            f"{row['peak_data_dir_mb']:.0f} MB, end of load "
            f"{row['end_of_load']['data_dir_mb']:.0f} MB, after "
            f"{row['after_cool_down']['data_dir_mb']:.0f} MB")
    if row.get("growth_1k_pending_rss_mb") is not None:
        text += (f"; fresh sidecar idle {row['growth_idle_rss_mb']:.1f} MB, 1k pending "
                 f"{row['growth_1k_pending_rss_mb']:.1f} MB")
    return text


def find_row(results, scenario, config_prefix, mode):
    for row in results["rows"]:
        if (row["scenario"] == scenario and row["config"].startswith(config_prefix)
                and row["mode"] == mode):
            return row
    return None


def aims(results):
    """The aims of issues 6 and 3, each met / not met with the measured figure."""
    lines = ["| aim | measured | verdict |", "|---|---|---|"]

    def add(aim, measured, met):
        verdict = ("n/a (not measured)" if met is None else
                   "reported" if met == "report" else "**met**" if met else "**not met**")
        lines.append(f"| {aim} | {measured} | {verdict} |")
    for mode in ("invoke", "proxy"):
        row = find_row(results, "sync", "saturated", mode)
        add(f"through-sidecar throughput ≥ 0.55× direct ({mode}, 64 in flight, load_client)",
            f"{row['throughput_ratio']:.2f}×" if row else "—",
            row["throughput_ratio"] >= 0.55 if row else None)
    direct = find_row(results, "sync", "h2load", "direct")
    proxy = find_row(results, "sync", "h2load", "proxy")
    if direct and proxy and direct.get("throughput") and proxy.get("throughput"):
        ratio = proxy["throughput"] / direct["throughput"]
        add("through-sidecar throughput ≥ 0.55× direct (proxy, h2load cross-check)",
            f"{ratio:.2f}× ({proxy['throughput']:,.0f} vs {direct['throughput']:,.0f}/s)",
            ratio >= 0.55)
    for mode in ("invoke", "proxy"):
        row = find_row(results, "sync", "paced 1k", mode)
        add(f"added p99 at 1k rps ≤ 0.5 ms ({mode})",
            f"{row['added_p99_us'] / 1000:.2f} ms (p99 {row['p99_us'] / 1000:.2f} vs direct "
            f"{(row['p99_us'] - row['added_p99_us']) / 1000:.2f} ms)" if row else "—",
            row["added_p99_us"] <= 500 if row else None)
    base = find_row(results, "accept", "serial", "fsync probe")
    accepts = [(find_row(results, "accept", config, side), label + suffix)
               for config, label in (
                   ("InvokeAsync accepts, 64 in flight (calls run", "calls run meanwhile"),
                   ("InvokeAsync accepts, 64 in flight (calls parked", "accept path only"))
               for side, suffix in ((ACCEPT_SIDES[False], ""),
                                    (ACCEPT_SIDES[True], ", on one stream"))]
    if not any(row for row, _ in accepts):  # runs from before the two variants
        accepts = [(find_row(results, "accept", "InvokeAsync", "callmesh"), "calls run meanwhile")]
    for row, label in accepts:
        if row is None:
            continue
        add(f"durable accepts ≥ 4× serial fsync, issues 6 and 3 ({label})",
            f"{row['throughput_ratio']:.1f}× ({row['throughput']:,.0f} accepts/s vs "
            f"{base['throughput']:,.0f} fsyncs/s)" if base else "—",
            row["throughput_ratio"] >= 4)
    for config, stream in (("64 in flight", False), ("64 in flight", True),
                           ("1 in flight", False), ("1 in flight", True)):
        row = find_row(results, "e2e", config, E2E_SIDES[stream])
        base = find_row(results, "e2e", config, "rabbitmq RPC")
        config += ", on one stream" if stream else ""
        if row and base:
            add(f"async completions/s ≥ 1.0× RabbitMQ RPC, p50 ≤ RabbitMQ's ({config})",
                f"{row['throughput_ratio']:.2f}× ({row['throughput']:,.0f} vs "
                f"{base['throughput']:,.0f}/s); p50 {row['p50_us'] / 1000:.1f} vs "
                f"{base['p50_us'] / 1000:.1f} ms",
                row["throughput_ratio"] >= 1.0 and row["p50_us"] <= base["p50_us"])
        else:
            add(f"async completions/s ≥ 1.0× RabbitMQ RPC ({config})", "—", None)
    floor = find_row(results, "e2e", "1 in flight", E2E_FLOOR_SIDE)
    base = find_row(results, "e2e", "1 in flight", "rabbitmq RPC")
    for stream in (False, True):
        row = find_row(results, "e2e", "1 in flight", E2E_SIDES[stream])
        if row and floor and base:
            add("issue 18: async p50 at 1 in flight against the floor its guarantees set "
                f"(report{', on one stream' if stream else ''})",
                f"p50 {row['p50_us']:,.0f} µs = {row['p50_us'] / floor['p50_us']:.2f}× the floor "
                f"of {floor['p50_us']:,.0f} µs (2 × fsync {floor['fsync_p50_us']:,.0f} + 2 × gRPC "
                f"{floor['direct_p50_us']:,.0f}); RabbitMQ p50 {base['p50_us']:,.0f} µs",
                "report")
    row = find_row(results, "growth", "1,000 pending", "callmesh")
    settled = row.get("settled_rss_mb") if row else None
    add("sidecar RSS ≤ 30 MB with 1k pending calls",
        (f"{row['rss_mb']:.1f} MB 2 s after the accepts (anonymous {row['rss_anon_mb']:.1f}, "
         f"mapped files {row['rss_file_mb']:.1f})" +
         (f"; settled {settled:.1f} MB (anonymous {row['settled_rss_anon_mb']:.1f})"
          if settled is not None else "")) if row else "—",
        max(row["rss_mb"], settled or 0) <= 30 if row else None)
    row = find_row(results, "growth", "100,000 pending", "callmesh")
    add("issue 3: callmeshd RSS with 100k pending calls (report)",
        f"{row['rss_mb']:.1f} MB (anonymous {row['rss_anon_mb']:.1f})" if row else "—",
        "report" if row else None)
    row = find_row(results, "e2e", "64 in flight", "callmesh InvokeAsync+callback")
    add("issue 3: end-to-end completions/s and latency, 64 in flight (report)",
        f"{row['throughput']:,.0f}/s, p50 {row['p50_us'] / 1000:.1f} ms, p99 "
        f"{row['p99_us'] / 1000:.1f} ms" if row else "—", "report" if row else None)
    row = find_row(results, "soak", "e2e", "callmesh InvokeAsync+callback")
    add("issue 18: RSS returns to its idle level once calls are purged (report)",
        f"{row['above_idle_after_cool_down_mb']:+.1f} MB vs idle after the cool-down "
        f"({row['idle']['rss_mb']:.1f} → peak {row['peak']['rss_mb']:.1f} → "
        f"{row['after_cool_down']['rss_mb']:.1f} MB)" if row else "—", "report" if row else None)
    for what in ("Invoke", "InvokeAsync+callback"):
        row = find_row(results, "security", what + ",", "mTLS + token")
        add(f"issue 12: security costs ≤ 15 % of throughput ({what}, 64 in flight)",
            f"{row['throughput_ratio']:.2f}× plaintext ({row['throughput']:,.0f}/s)" if row else "—",
            row["throughput_ratio"] >= 0.85 if row else None)
    row = find_row(results, "pubsub", "fan-out to 3", "callmesh Publish")
    base = find_row(results, "pubsub", "fan-out to 3", "rabbitmq durable fanout")
    add("issue 16: fan-out to 3 services, events delivered/s ≥ 1.0× RabbitMQ durable fanout "
        "(64 in flight)",
        f"{row['throughput_ratio']:.2f}× ({row['throughput']:,.0f} vs {base['throughput']:,.0f}/s)"
        if row and base else "—", row["throughput_ratio"] >= 1.0 if row and base else None)
    return "\n".join(lines) + "\n"


def short_label(row):
    """"scenario configuration side" in a few words, for the chart's axis."""
    config = row["config"]
    for long, short in ((r"^one in flight", "1 inflight"), (r"^paced ", ""),
                        (r"^saturated, ", ""), (r" in flight", " inflight"),
                        (r"^InvokeAsync accepts, ", ""), (r" \(calls run.*", " run"),
                        (r" \(calls parked.*", " parked"),
                        (r"^serial write\+fdatasync.*", "serial"),
                        (r" pending \(.*\)", " pending"), (r",000,000 pending", "M pending"),
                        (r",000 pending", "k pending")):
        config = re.sub(long, short, config)
    side = {"callmesh InvokeAsync+callback": "callmesh", "rabbitmq RPC": "rabbitmq",
            "callmesh InvokeAsyncStream+callback": "callmesh stream",
            E2E_AWAIT_SIDE: "callmesh await",
            "nats request-reply": "nats", "callmesh Invoke": "callmesh",
            "fsync probe": "fsync"}.get(row["mode"], row["mode"])
    return f"{row['scenario']} {config} {side}".replace('"', "'")


def chart(results, png):
    """Two panels with gnuplot: throughput per configuration and side, and p50/p99 latency."""
    if shutil.which("gnuplot") is None:
        print("gnuplot not found; no chart")
        return False
    rows = [r for r in results["rows"] if r.get("throughput") and r.get("p50_us")]
    data = png[:-4] + ".dat"
    with open(data, "w") as f:
        for r in rows:
            f.write(f"\"{short_label(r)}\" {r['throughput']:.1f} {r['p50_us'] / 1000:.4f} "
                    f"{r['p99_us'] / 1000:.4f}\n")
    width = max(1200, 45 * len(rows) + 200)
    script = f"""
set terminal pngcairo size {width},1100 font ",9"
set output "{png}"
set datafile separator whitespace
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set xtics rotate by 90 right scale 0 font ",8"
set bmargin 13
set grid ytics
set key top right
set multiplot layout 2,1 title "callmesh benchmarks {results['started']} ({results['machine']['cpus']} CPUs, medians of {results['repeat']} runs)"
set title "Throughput"
set ylabel "calls/s (log)"
set yrange [10:*]
set logscale y
plot "{data}" using 2:xtic(1) title "calls/s" lc rgb "#4477aa"
set title "Latency"
set autoscale y
set ylabel "ms (log)"
plot "{data}" using 3:xtic(1) title "p50" lc rgb "#66ccee", "" using 4 title "p99" lc rgb "#ee6677"
unset multiplot
"""
    return run_gnuplot(script, data)


def run_gnuplot(script, data):
    """Runs a gnuplot script, then deletes it and its data file; False (and why) if it failed."""
    with tempfile.NamedTemporaryFile("w", suffix=".gp", delete=False) as f:
        f.write(script)
        gp = f.name
    result = subprocess.run(["gnuplot", gp], capture_output=True, text=True)
    os.unlink(gp)
    os.unlink(data)
    if result.returncode != 0:
        print("gnuplot failed:", result.stderr)
        return False
    return True


def soak_chart(results, png):
    """The soak row's samples over time: RSS (total, anonymous, file-backed) on the left axis,
    the data dir's size on the right, the load's start and end marked."""
    row = next((r for r in results["rows"] if r.get("samples")), None)
    if row is None or shutil.which("gnuplot") is None:
        return False
    data = png[:-4] + ".dat"
    with open(data, "w") as f:
        for s in row["samples"]:
            f.write(f"{s['t_s']} {s['rss_mb']:.2f} {s['rss_anon_mb']:.2f} {s['rss_file_mb']:.2f} "
                    f"{s['data_dir_mb']:.2f}\n")
    idle = row["idle"]["rss_mb"]
    script = f"""
set terminal pngcairo size 1200,600 font ",10"
set output "{png}"
set title noenhanced "callmeshd memory: e2e 64 in flight, result_retention {row['retention_s']} s, then idle ({results['started']})"
set xlabel "seconds"
set ylabel "RSS MB"
set y2label "data dir MB"
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
set grid
set key outside bottom center horizontal
set arrow from {row['load_started_s']},graph 0 to {row['load_started_s']},graph 1 nohead dt 2
set arrow from {row['load_ended_s']},graph 0 to {row['load_ended_s']},graph 1 nohead dt 2
set label "load" at {row['load_started_s']},graph 0.04 offset 0.5,0
set label "cool-down" at {row['load_ended_s']},graph 0.04 offset 0.5,0
plot "{data}" using 1:2 with lines lw 2 lc rgb "#222222" title "RSS", \\
     "" using 1:3 with lines lw 2 lc rgb "#ee6677" title "RssAnon", \\
     "" using 1:4 with lines lw 2 lc rgb "#4477aa" title "RssFile", \\
     {idle:.2f} with lines dt 3 lc rgb "#222222" title "idle RSS", \\
     "" using 1:5 axes x1y2 with lines lc rgb "#228833" title "data dir (right)"
"""
    return run_gnuplot(script, data)


def command_output(args):
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine_info():
    cpu_model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                      if l.startswith("model name")), platform.processor())
    memory_kb = next(int(l.split()[1]) for l in open("/proc/meminfo")
                     if l.startswith("MemTotal"))
    source = command_output(["findmnt", "-n", "-o", "SOURCE,FSTYPE", "--target", tempfile.gettempdir()])
    device = os.path.basename(source.split()[0]) if source else ""
    disk = source
    block = f"/sys/block/{re.sub(r'p?[0-9]+$', '', device)}" if device else ""
    if block and not os.path.exists(block):
        block = f"/sys/block/{device}"
    if block and os.path.exists(block):
        rotational = open(f"{block}/queue/rotational").read().strip()
        size_gb = int(open(f"{block}/size").read()) * 512 / 1e9
        model = ""
        for path in (f"{block}/device/model", f"{block}/device/vendor"):
            if os.path.exists(path):
                model = (model + " " + open(path).read().strip()).strip()
        kind = "virtio block device" if device.startswith("vd") else model or "disk"
        disk = (f"{source} ({kind}, {size_gb:.0f} GB, "
                f"{'rotational' if rotational == '1' else 'non-rotational'})")
    return {"cpus": os.cpu_count(), "cpu_model": cpu_model, "kernel": platform.release(),
            "memory_gb": memory_kb / 2**20, "disk": disk,
            "load_start": " ".join(open("/proc/loadavg").read().split()[:3])}


def versions():
    def pkg(name):
        return command_output(["pkg-config", "--modversion", name]) or "?"

    def deb(name):
        return command_output(["dpkg-query", "-W", "-f=${Version}", name]) or "not installed"
    nats = command_output(["nats-server", "--version"]).replace("nats-server: ", "")
    return {"gRPC": pkg("grpc++"), "protobuf": pkg("protobuf"), "RocksDB": pkg("rocksdb"),
            "RabbitMQ": deb("rabbitmq-server"), "Erlang": deb("erlang-base"),
            "librabbitmq": pkg("librabbitmq"), "NATS server": nats or "?",
            "libnats": pkg("libnats"), "h2load (nghttp2)": deb("nghttp2-client")}


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--quick", action="store_true",
                        help="1 repeat of 3 s, growth to 10k pending only")
    parser.add_argument("--only", choices=list(SCENARIOS), action="append")
    parser.add_argument("--growth-max", type=int, default=1000000,
                        help="largest number of pending calls in the growth scenario")
    parser.add_argument("--growth-step-seconds", type=int, default=300,
                        help="time limit of one growth step (the last level may stay partial)")
    parser.add_argument("--growth-settle-seconds", type=int, default=30,
                        help="growth: RSS is sampled again this long after each step (default 30)")
    parser.add_argument("--growth-repeat", type=int, default=1,
                        help="runs of the growth scenario (each fills a fresh sidecar)")
    parser.add_argument("--soak-seconds", type=int, default=300,
                        help="soak: how long the e2e load runs (default 300)")
    parser.add_argument("--soak-cooldown-seconds", type=int, default=90,
                        help="soak: how long RSS is sampled after the load stops (default 90)")
    parser.add_argument("--soak-retention-seconds", type=int, default=30,
                        help="soak: the sidecar's result_retention; results are purged this long "
                        "after delivery, checked every retention/10 (default 30)")
    parser.add_argument("--bin-dir", help="bazel-bin of `bazel build -c opt` (default: ask bazel)")
    parser.add_argument("--note", default="", help="free text for the table's header")
    parser.add_argument("--render", metavar="JSON",
                        help="only rewrite the .md and .png of an earlier run's .json")
    args = parser.parse_args()
    if args.render:
        with open(args.render) as f:
            results = json.load(f)
        write_report(results, args.render[:-len(".json")])
        return 0
    if args.quick:
        args.repeat, args.seconds = 1, 3
        args.growth_max = min(args.growth_max, 10000)
    bin_dir = args.bin_dir or bazel_bin()
    binaries = {"callmeshd": f"{bin_dir}/runtime/sidecar/callmeshd",
                "callmesh": f"{bin_dir}/cli/callmesh",
                "greeter_server": f"{bin_dir}/services/greeter/greeter_server",
                "load_client": f"{bin_dir}/bench/load/load_client",
                "async_load": f"{bin_dir}/bench/async/async_load",
                "await_load": f"{bin_dir}/bench/async/await_load",
                "rabbit_rpc": f"{bin_dir}/bench/brokers/rabbit_rpc",
                "nats_rpc": f"{bin_dir}/bench/brokers/nats_rpc",
                "rabbit_fanout": f"{bin_dir}/bench/brokers/rabbit_fanout",
                "nats_fanout": f"{bin_dir}/bench/brokers/nats_fanout",
                "pubsub_bench": f"{bin_dir}/bench/pubsub/pubsub_bench"}
    results = {"started": datetime.datetime.now().isoformat(timespec="seconds"),
               "machine": machine_info(), "versions": versions(), "note": args.note,
               "repeat": args.repeat, "seconds": args.seconds, "rows": []}
    for name in args.only or [name for name in SCENARIOS if name not in ON_REQUEST]:
        print(f"== scenario {name}", flush=True)
        # A scenario that fails is reported and the others still run: the runs done so far are
        # written out either way (a long run is not lost to its last scenario).
        try:
            with tempfile.TemporaryDirectory(prefix=f"callmesh-bench-{name}-") as workdir:
                results["rows"] += SCENARIOS[name](binaries, workdir, args.repeat, args.seconds,
                                                   args)
        except Exception as error:  # noqa: BLE001 - any failure of one scenario
            print(f"scenario {name} failed: {error}", file=sys.stderr, flush=True)
            results.setdefault("failed", []).append({"scenario": name, "error": str(error)})
    results["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
    results["machine"]["load_end"] = " ".join(open("/proc/loadavg").read().split()[:3])
    out_dir = os.path.join(ROOT, "bench", "results")
    os.makedirs(out_dir, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    with open(os.path.join(out_dir, stamp + ".json"), "w") as f:
        json.dump(results, f, indent=1)
    write_report(results, os.path.join(out_dir, stamp))
    return 1 if results.get("failed") else 0


def write_report(results, base):
    """Writes <base>.md (table, aims, chart link) and <base>.png."""
    table = markdown(results) + "\nAgainst the aims:\n\n" + aims(results)
    for failure in results.get("failed", []):
        first_line = failure["error"].strip().splitlines()[0] if failure["error"].strip() else ""
        table += f"\n**Scenario {failure['scenario']} failed**: {first_line}\n"
    png = base + ".png"
    if chart(results, png):
        table += f"\n![chart]({os.path.basename(png)})\n"
    soak_png = base + "-soak.png"
    if soak_chart(results, soak_png):
        table += f"\n![RSS over time]({os.path.basename(soak_png)})\n"
    with open(base + ".md", "w") as f:
        f.write(table)
    print(table)
    print(f"wrote {base}.json, .md" + (", .png" if os.path.exists(png) else ""))


SCENARIOS = {"sync": lambda binaries, workdir, repeat, seconds, options: scenario_sync(
                 binaries, workdir, repeat, seconds),
             "accept": scenario_accept, "e2e": scenario_e2e, "nats": scenario_nats,
             "growth": scenario_growth, "security": scenario_security,
             "observability": scenario_observability, "pubsub": scenario_pubsub,
             "soak": scenario_soak}
# Scenarios that run only when named with --only (they take minutes).
ON_REQUEST = ("soak",)


if __name__ == "__main__":
    sys.exit(main())
