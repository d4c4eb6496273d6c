#!/usr/bin/env python3
"""HTTP throughput of the orders example over loopback: what `#[require_api_key]` costs a request.

    python3 bench/http_overhead.py                 # 7 rounds of 5 s per case, about 2 minutes
    python3 bench/http_overhead.py --duration 3 --rounds 5   # about a minute

One release server, three cases, run in turn in every round (order reversed every other round,
so drift in the machine's load falls on all of them alike):

    health    GET /health, no guard: the limit
    accepted  GET /secure-data with a valid key (`#[require_api_key]`)
    rejected  GET /secure-data with a well-formed unknown key: 401, and a WARN event

Logging is the example's default: `RUST_LOG` unset means `info`, so every rejection is a WARN
line on stdout (written to a file here) and accepted requests log nothing (`debug`). Ratios are
taken within a round, then the median over rounds is reported.
"""

import argparse
import os

from benchlib import (HOST, WORK, build_example, ensure_wrk, free_port, log, machine, median,
                    start, table, wrk)

KEY = "bench-key-0123456789abcdef0123456789"
UNKNOWN = "not-a-configured-key-0123456789abcdef"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=int, default=5, help="seconds per run (default 5)")
    p.add_argument("--rounds", type=int, default=7, help="rounds of the three cases (default 7)")
    p.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    p.add_argument("--rust-log", default=None,
                   help="RUST_LOG for the server (default: unset, the example's `info`)")
    args = p.parse_args()

    ensure_wrk()
    binary = build_example()
    os.makedirs(WORK, exist_ok=True)
    port = free_port()
    server_log = os.path.join(WORK, "http-server.log")
    env = {
        "ROCKET_ADDRESS": HOST,
        "ROCKET_PORT": str(port),
        # Rocket's own per-request lines (off by default in release builds anyway).
        "ROCKET_LOG_LEVEL": "off",
        "API_KEY_BENCH": f"{KEY};scopes=read:orders",
    }
    os.environ.pop("RUST_LOG", None)
    if args.rust_log is not None:
        env["RUST_LOG"] = args.rust_log
    start([binary], env, port, server_log)

    base = f"http://{HOST}:{port}"
    cases = {
        "health": (f"{base}/health", []),
        "accepted": (f"{base}/secure-data", [f"x-api-key: {KEY}"]),
        "rejected": (f"{base}/secure-data", [f"x-api-key: {UNKNOWN}"]),
    }
    expect_errors = {"health": False, "accepted": False, "rejected": True}

    log("warming up")
    for url, headers in cases.values():
        wrk(url, 1, args.connections, headers)

    rps = {name: [] for name in cases}
    for r in range(args.rounds):
        order = list(cases) if r % 2 == 0 else list(reversed(cases))
        for name in order:
            url, headers = cases[name]
            value, non2xx, total = wrk(url, args.duration, args.connections, headers)
            if (non2xx == total) != expect_errors[name] or 0 < non2xx < total:
                raise SystemExit(f"{name}: {non2xx} of {total} responses were not 2xx")
            rps[name].append(value)
            log(f"round {r + 1}/{args.rounds} {name:9} {value:10.0f} req/s")

    with open(server_log, "rb") as f:
        warn_lines = sum(1 for line in f if b"request rejected" in line)

    print(f"\nmachine: {machine()}; wrk 1 thread, {args.connections} connections, "
          f"{args.rounds} rounds x {args.duration} s per case; RUST_LOG="
          f"{args.rust_log if args.rust_log is not None else '(unset: info)'}\n")
    table(["case", "median req/s", "runs (req/s)"],
          [[n, f"{median(v):.0f}", " ".join(f"{x:.0f}" for x in v)] for n, v in rps.items()])
    guarded = [a / h for a, h in zip(rps["accepted"], rps["health"])]
    rejected = [j / a for j, a in zip(rps["rejected"], rps["accepted"])]
    print()
    table(["ratio (median of per-round ratios)", "value", "target"], [
        ["accepted / health (guarded vs unguarded)", f"{median(guarded):.3f}", ">= 0.97"],
        ["rejected / accepted", f"{median(rejected):.3f}", ">= 0.8"],
    ])
    print(f"\n`request rejected` lines the server wrote: {warn_lines} ({server_log})")


if __name__ == "__main__":
    main()
