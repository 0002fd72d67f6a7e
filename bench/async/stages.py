#!/usr/bin/env python3
"""Where an async call's time goes at one call in flight, from the timestamps the sidecar itself
journals (issue 18).

Runs callmeshd and the greeter like bench/run.py, drives `async_load --mode=e2e --in_flight=1`
(on one InvokeAsyncStream, as the SDK sends calls) for --seconds, then reads every call back
(`callmesh calls ls -o json`) and splits each at the timestamps the sidecar journals:

  accepted   envelope.accepted_at: the sidecar has the request (before its journal write)
  completed  completed_at: the target's reply is back (before the outcome's journal write)

(started_at is no stage boundary: attempt 1 is recorded as started in the accept's own write,
before that write is on disk.) It reports the median of accepted -> completed (the accept's
durable write, the attempt's start, the target's round trip) beside the client's end-to-end and
accept p50 and the two probes of the floor (a serial fsync, a direct gRPC call to the greeter);
what is left over (the request's way in, the outcome's write, the callback's way out) shows as the
difference. With --trace it also records the sidecar's scheduler and syscall events for a moment
of the run (`perf record -a`, root) and reports how long the journal's fdatasyncs take and how long
after each the journal's done thread sends its first message (the next step of the call).

  bench/async/stages.py --bin-dir=$(bazel info -c opt bazel-bin) [--seconds 5] [--callmeshd PATH]
      [--config sidecar.yaml] [--trace]
"""
import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import run  # noqa: E402  (bench/run.py: the processes and load clients, shared)


def micros(timestamp):
    """RFC 3339 text (as the CLI prints protobuf Timestamps) to microseconds since the epoch."""
    date, _, fraction = timestamp.rstrip("Z").partition(".")
    seconds = datetime.datetime.fromisoformat(date).replace(
        tzinfo=datetime.timezone.utc).timestamp()
    return int(seconds) * 1_000_000 + int((fraction + "000000")[:6])


TRACE_EVENTS = ("sched:sched_switch,sched:sched_wakeup,syscalls:sys_enter_fdatasync,"
                "syscalls:sys_exit_fdatasync,syscalls:sys_enter_sendmsg")


def thread_ids(pid):
    """{thread name: [tids]} of process `pid`."""
    threads = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/comm") as f:
            threads.setdefault(f.read().strip(), []).append(int(tid))
    return threads


def journal_gaps(perf_data, writer, done):
    """From `perf script` of TRACE_EVENTS: the writer's fdatasync durations, and for each the time
    from its return to the done thread's next sendmsg (microseconds)."""
    script = subprocess.run(["perf", "script", "-i", perf_data, "-F", "tid,time,event"],
                            capture_output=True, text=True, check=True).stdout
    syncs, gaps = [], []
    entered = returned = None
    for line in script.splitlines():
        match = re.match(r"\s*(\d+)\s+([\d.]+):\s+(\S+):", line)
        if not match:
            continue
        tid, at, event = int(match.group(1)), float(match.group(2)) * 1e6, match.group(3)
        if tid == writer and event == "syscalls:sys_enter_fdatasync":
            entered = at
        elif tid == writer and event == "syscalls:sys_exit_fdatasync" and entered is not None:
            syncs.append(at - entered)
            entered, returned = None, at
        elif tid == done and event == "syscalls:sys_enter_sendmsg" and returned is not None:
            gaps.append(at - returned)
            returned = None
    return syncs, gaps


def record_trace(perf_data, delay):
    """After `delay` seconds, 0.5 s of TRACE_EVENTS on every CPU into `perf_data`."""
    time.sleep(delay)
    subprocess.run(["perf", "record", "-q", "-a", "-o", perf_data, "-e", TRACE_EVENTS, "--",
                    "sleep", "0.5"], check=True, capture_output=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin-dir", help="bazel-bin of `bazel build -c opt` (default: ask bazel)")
    parser.add_argument("--callmeshd", help="callmeshd to measure (default: the one in --bin-dir)")
    parser.add_argument("--config", help="a sidecar config file (callmeshd --config)")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--trace", action="store_true",
                        help="also record scheduler and syscall events (perf, root) for 0.5 s")
    args = parser.parse_args()
    bin_dir = args.bin_dir or run.bazel_bin()
    binaries = {"callmeshd": args.callmeshd or f"{bin_dir}/runtime/sidecar/callmeshd",
                "greeter_server": f"{bin_dir}/services/greeter/greeter_server",
                "async_load": f"{bin_dir}/bench/async/async_load",
                "load_client": f"{bin_dir}/bench/load/load_client",
                "callmesh": f"{bin_dir}/cli/callmesh"}
    for path in binaries.values():
        if not os.access(path, os.X_OK):
            sys.exit(f"stages.py: {path} is missing (bazel build -c opt the bench binaries)")
    with tempfile.TemporaryDirectory(prefix="callmesh-stages-") as workdir:
        sidecar, greeter, data_dir = run.start_mesh(binaries, workdir, "stages", config=args.config)
        perf_data = os.path.join(workdir, "sched.data")
        trace = traced = None
        try:
            if args.trace:
                threads = thread_ids(sidecar.popen.pid)
                if not threads.get("journal-writer") or not threads.get("journal-done"):
                    sys.exit("stages.py --trace: this callmeshd does not name its journal threads "
                             "(journal-writer, journal-done); build it from this tree")
                writer, done = threads["journal-writer"][0], threads["journal-done"][0]
                trace = threading.Thread(target=record_trace,
                                         args=(perf_data, min(2, args.seconds / 2)))
                trace.start()
            result = run.async_load(binaries, sidecar.address, "e2e", 1, args.seconds,
                                    "stages", stream="true")
            if trace:
                trace.join()
                if not os.path.exists(perf_data):
                    sys.exit("stages.py --trace: perf recorded nothing (it needs root, and perf)")
                traced = journal_gaps(perf_data, writer, done)
            limit = int(result["throughput"] * (args.seconds + 5)) + 1000
            listed = subprocess.run([binaries["callmesh"], "--sidecar", sidecar.address, "-o",
                                     "json", "calls", "ls", "--limit", str(limit)],
                                    capture_output=True, text=True, timeout=120, check=True)
            floor = run.e2e_floor(binaries, greeter, data_dir, min(args.seconds, 5))
        finally:
            greeter.stop()
            sidecar.stop()
    calls = json.loads(listed.stdout)
    calls = calls.get("calls", calls) if isinstance(calls, dict) else calls
    in_sidecar = [micros(call["completedAt"]) - micros(call["envelope"]["acceptedAt"])
                  for call in calls if call.get("state") == "CALL_STATE_SUCCEEDED"]
    if not in_sidecar:
        sys.exit("stages.py: no succeeded call in `callmesh calls ls`")
    e2e = result["p50_us"]
    print(f"{len(calls)} calls, {result['throughput']:.0f}/s at 1 in flight on one stream; "
          f"load average {' '.join(open('/proc/loadavg').read().split()[:3])}")
    print(f"{'end to end (client: send -> callback received)':52} p50 {e2e:7.0f} us")
    print(f"{'accept acknowledged (client)':52} p50 {result['accept_p50_us']:7.0f} us")
    known = statistics.median(in_sidecar)
    print(f"{'accepted -> reply back (accept written, attempt)':52} p50 {known:7.0f} us  (p90 "
          f"{statistics.quantiles(in_sidecar, n=10)[-1]:.0f})")
    print(f"{'the rest: request in, outcome written, callback out':52}     {e2e - known:7.0f} us "
          "(end to end minus the above)")
    print(f"floor probes: serial fsync p50 {floor['fsync_p50_us']:.0f} us, direct gRPC p50 "
          f"{floor['direct_p50_us']:.0f} us")
    if traced:
        syncs, gaps = traced
        if not syncs or not gaps:
            print("traced 0.5 s: no fdatasync of the journal followed by a send was seen")
        else:
            print(f"traced 0.5 s: the journal's fdatasync p50 {statistics.median(syncs):.0f} us "
                  f"({len(syncs)}); from its return to the done thread's next send p50 "
                  f"{statistics.median(gaps):.0f} us")


if __name__ == "__main__":
    main()
