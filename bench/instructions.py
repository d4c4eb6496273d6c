#!/usr/bin/env python3
"""Instructions per request in the orders example, counted by callgrind: what the guard costs,
in a figure that does not move with the machine's load.

    python3 bench/instructions.py                  # 2,000 requests per case, about 2 minutes
    python3 bench/instructions.py --requests 500   # quicker
    python3 bench/instructions.py --top 25         # and the functions that differ most

Req/s and CPU time on a shared 2-core machine drift by ±20 % from minute to minute;
`valgrind --tool=callgrind` counts the instructions the server executes, which are the same
from run to run for the same binary and requests. One release server (built with line tables
into target/bench/profile, so symbols resolve) runs under callgrind; a keep-alive client sends
each case's requests in turn, and the counts are reset before and dumped after each case:

    health        GET /health, no guard
    health+key    GET /health with the x-api-key header the guarded requests carry
    accepted      GET /secure-data with a valid key (`#[require_api_key]`)
    rejected      GET /secure-data with a well-formed unknown key (401)

The guard's cost is accepted minus health+key (same request bytes but the path); rejected minus
accepted is the cost of a rejection. Logging is the example's default (`RUST_LOG` unset) unless
`--rust-log` says otherwise. Instructions are not time (a cache miss costs no instruction), so
the req/s scripts remain the measure of throughput; this one tells where the work is.
"""

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import time

from benchlib import (HOST, ROOT, WORK, free_port, generated_key, log, machine, run, send, start,
                      stop, table)

# Keys of the generated shape, as `apikey new` makes them: the valid one is configured, the other
# is well formed (its checksum holds) but unknown, so it is hashed and looked up like a guess.
KEY = generated_key("bench: the configured key")
UNKNOWN = generated_key("bench: a well-formed key nobody configured")


def ensure_valgrind():
    if shutil.which("valgrind") and shutil.which("callgrind_control"):
        return
    if os.geteuid() != 0:
        sys.exit("valgrind is not installed; run `apt-get install valgrind` as root, then this again")
    run(["apt-get", "update", "-qq"], stdout=subprocess.DEVNULL)
    run(["apt-get", "install", "-y", "-qq", "valgrind"], stdout=subprocess.DEVNULL)


def build():
    target = os.path.join(WORK, "profile")
    env = {**os.environ, "CARGO_TARGET_DIR": target,
           "CARGO_PROFILE_RELEASE_DEBUG": "line-tables-only"}
    run(["cargo", "build", "--release", "--locked", "--example", "orders"], cwd=ROOT, env=env)
    return os.path.join(target, "release", "examples", "orders")


def control(pid, *args):
    subprocess.run(["callgrind_control", *args, str(pid)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def total(path):
    with open(path) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    sys.exit(f"no totals in {path}")


def functions(path):
    """Exclusive instructions by function (the function's own code, callees excluded)."""
    out = subprocess.run(["callgrind_annotate", "--inclusive=no", "--tree=none", "--threshold=100",
                          path], check=True, capture_output=True, text=True).stdout
    costs = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\([^)]*\)\s+(\S.*)", line)
        # Function lines only (`file:function`), not per-line figures or call-tree lines.
        if not m or "=>" in line or not re.match(r"\S+\.(rs|c|S):\S", m.group(2)):
            continue
        name = re.sub(r"/root/\.cargo/registry/src/[^/]*/|/rustc/[0-9a-f]+/library/", "", m.group(2))
        name = re.sub(r" \[[^\]]*\]$", "", name).strip()
        costs[name] = costs.get(name, 0) + int(m.group(1).replace(",", ""))
    return costs


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=2000, help="requests per case (default 2000)")
    p.add_argument("--rust-log", default=None, help="RUST_LOG for the server (default: unset)")
    p.add_argument("--top", type=int, default=0, help="list the N functions whose cost differs most "
                   "between accepted and health+key")
    args = p.parse_args()

    ensure_valgrind()
    binary = build()
    out_dir = os.path.join(WORK, "callgrind")
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    port = free_port()
    env = {"ROCKET_ADDRESS": HOST, "ROCKET_PORT": str(port), "ROCKET_WORKERS": "1",
           "API_KEY_BENCH": f"{KEY};scopes=read:orders"}
    if args.rust_log is not None:
        env["RUST_LOG"] = args.rust_log
    # Under callgrind the server takes its time to start.
    server = start(["valgrind", "--tool=callgrind", "--collect-atstart=yes",
                    f"--callgrind-out-file={out_dir}/callgrind.out.%p", binary],
                   env, port, os.path.join(out_dir, "server.log"), timeout=120, unset=("RUST_LOG",))
    try:
        cases = [
            ("health", "/health", {}),
            ("health+key", "/health", {"x-api-key": KEY}),
            ("accepted", "/secure-data", {"x-api-key": KEY}),
            ("rejected", "/secure-data", {"x-api-key": UNKNOWN}),
        ]
        log("warming up")
        for _, path, headers in cases:
            send(port, path, headers, 50)
        counts, dumps = {}, {}
        for name, path, headers in cases:
            control(server.pid, "-z")
            statuses = send(port, path, headers, args.requests)
            before = set(glob.glob(f"{out_dir}/callgrind.out.*"))
            control(server.pid, "-d")
            dump = sorted(set(glob.glob(f"{out_dir}/callgrind.out.*")) - before)[-1]
            counts[name] = total(dump) / args.requests
            dumps[name] = dump
            log(f"  {name}: {counts[name]:,.0f} instructions per request, statuses {sorted(statuses)}")
    finally:
        stop(server, timeout=60)

    print(f"\n{machine()}; {args.requests} requests per case, keep-alive, one connection; "
          f"RUST_LOG={args.rust_log if args.rust_log is not None else '(unset)'}\n")
    table(["case", "instructions per request"],
          [[n, f"{c:,.0f}"] for n, c in counts.items()])
    print()
    table(["ratio of instructions per request", "value"], [
        ["accepted / health+key (the guard's share)", f"{counts['accepted'] / counts['health+key']:.3f}"],
        ["accepted / health", f"{counts['accepted'] / counts['health']:.3f}"],
        ["rejected / accepted", f"{counts['rejected'] / counts['accepted']:.3f}"],
    ])
    if args.top:
        a, h = functions(dumps["accepted"]), functions(dumps["health+key"])
        # Thread and task entry points are charged the whole request; they say nothing.
        skip = ("clone.S:", "pthread_create.c:", "thread_start", "enter_runtime", "task::raw::poll",
                "harness::Harness", "Core<T,S>::poll", "Scoped<T>::set", "worker::run",
                "lifecycle.rs:", "__rust_begin_short_backtrace")
        diff = sorted(((a.get(f, 0) - h.get(f, 0)) / args.requests, f) for f in set(a) | set(h)
                      if not any(s in f for s in skip))
        print(f"\nFunctions whose exclusive cost differs most, accepted minus health+key, per request:\n")
        table(["instructions", "function"],
              [[f"{d:+,.0f}", f[:110]] for d, f in sorted(diff, key=lambda x: -abs(x[0]))[:args.top]])


if __name__ == "__main__":
    main()
