#!/usr/bin/env python3
"""HTTP throughput of the orders example over loopback: what `#[require_api_key]` costs a request.

    python3 bench/http_overhead.py                 # 9 rounds of 3 s per case, about 90 s
    python3 bench/http_overhead.py --duration 2 --rounds 8   # about a minute

One release server, three cases, run in turn in every round (order reversed every other round,
so drift in the machine's load falls on all of them alike):

    health    GET /health, no guard: the limit
    accepted  GET /secure-data with a valid key (`#[require_api_key]`)
    rejected  GET /secure-data with a well-formed unknown key: 401, and a WARN event

Logging: the example's default (`RUST_LOG` unset): this crate's events on, so every rejection
is a `request rejected` WARN event (bounded by `rejected_log_limit`, 100 a second, plus one
summary a second of how many were not written; all are counted), written to a file here; and,
as Rocket's own logger does in a release build, none of Rocket's lines for every request.
`--rust-log warn` adds Rocket's two WARN lines for every refused request (`Request guard …
failed`, target `orders::app::_`, and `Responding with registered … catcher`, target
`rocket::server::_`), which this crate cannot turn off in an application that routes Rocket's
log records into `tracing`, as the example does; `--rust-log error` measures with no logging at
all. `--rejected-log-limit 0` logs every rejection (the behaviour before `rejected_log_limit`).
Ratios are taken within a round, then the median over rounds.
"""

import argparse
import os

from benchlib import (HOST, WORK, build_example, generated_key, cpu_seconds, ensure_wrk, free_port, log, machine,
                      median, start, table, wrk)

# Keys of the generated shape, as `apikey new` makes them: the valid one is configured, the other
# is well formed (its checksum holds) but unknown, so it is hashed and looked up like a guess.
KEY = generated_key("bench: the configured key")
UNKNOWN = generated_key("bench: a well-formed key nobody configured")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=int, default=3, help="seconds per run (default 3)")
    p.add_argument("--rounds", type=int, default=9, help="rounds of the three cases (default 9)")
    p.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    p.add_argument("--rust-log", default=None,
                   help="RUST_LOG for the server (default: unset, the example's own default)")
    p.add_argument("--health-with-key", action="store_true",
                   help="send the same x-api-key header to /health too, so the ratio isolates the "
                        "guard from the cost of receiving one more header")
    p.add_argument("--rejected-log-limit", type=int, default=None,
                   help="the server's `rejected_log_limit` (default: the crate's default)")
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
    if args.rust_log is not None:
        env["RUST_LOG"] = args.rust_log
    else:
        os.environ.pop("RUST_LOG", None)
    if args.rejected_log_limit is not None:
        env["ROCKET_API_KEYS"] = f"{{rejected_log_limit={args.rejected_log_limit}}}"
    server = start([binary], env, port, server_log)

    base = f"http://{HOST}:{port}"
    cases = {
        "health": (f"{base}/health", [f"x-api-key: {KEY}"] if args.health_with_key else []),
        "accepted": (f"{base}/secure-data", [f"x-api-key: {KEY}"]),
        "rejected": (f"{base}/secure-data", [f"x-api-key: {UNKNOWN}"]),
    }
    expect_errors = {"health": False, "accepted": False, "rejected": True}

    log("warming up")
    for url, headers in cases.values():
        wrk(url, 1, args.connections, headers)

    rps = {name: [] for name in cases}
    cpu = {name: [] for name in cases}  # server CPU microseconds per request
    for r in range(args.rounds):
        order = list(cases) if r % 2 == 0 else list(reversed(cases))
        for name in order:
            url, headers = cases[name]
            before = cpu_seconds(server.pid)
            value, non2xx, total = wrk(url, args.duration, args.connections, headers)
            cpu[name].append((cpu_seconds(server.pid) - before) / total * 1e6)
            if (non2xx == total) != expect_errors[name] or 0 < non2xx < total:
                raise SystemExit(f"{name}: {non2xx} of {total} responses were not 2xx")
            rps[name].append(value)
            log(f"round {r + 1}/{args.rounds} {name:9} {value:10.0f} req/s "
                f"{cpu[name][-1]:6.1f} µs CPU/req")

    warn_lines = summarised = 0
    with open(server_log, "rb") as f:
        for line in f:
            if b"request rejected" in line:
                warn_lines += 1
            elif b"request rejections not logged" in line:
                summarised += 1

    print(f"\nmachine: {machine()}; wrk 1 thread, {args.connections} connections, "
          f"{args.rounds} rounds x {args.duration} s per case; RUST_LOG={args.rust_log or '(unset)'}; "
          f"rejected_log_limit={'default' if args.rejected_log_limit is None else args.rejected_log_limit}\n")
    table(["case", "median req/s", "median server CPU µs/req", "runs (req/s)"],
          [[n, f"{median(rps[n]):.0f}", f"{median(cpu[n]):.1f}",
            " ".join(f"{x:.0f}" for x in rps[n])] for n in cases])

    def ratio(a, b, of):
        return f"{median([x / y for x, y in zip(of[a], of[b])]):.3f}"

    print()
    table(["ratio (median of per-round ratios)", "req/s", "server CPU/req", "target (req/s)"], [
        ["accepted / health (guarded vs unguarded)", ratio("accepted", "health", rps),
         ratio("health", "accepted", cpu), ">= 0.97"],
        ["rejected / accepted", ratio("rejected", "accepted", rps),
         ratio("accepted", "rejected", cpu), ">= 0.8"],
    ])
    print("\n(the CPU column is inverted, b/a, so that both read as throughput ratios; it counts "
          "only the server's own CPU time, so it is less disturbed by other load on the machine)")
    print(f"\nserver log ({server_log}): {warn_lines} `request rejected` events, "
          f"{summarised} `request rejections not logged` summaries")


if __name__ == "__main__":
    main()
