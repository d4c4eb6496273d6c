#!/usr/bin/env python3
"""Soak test: the release orders example under a mixed load on loopback.

Sends valid, unknown, expired, wrong-scope and missing keys for --duration seconds (default 300)
from --workers processes with keep-alive connections, then checks that no answer was a 5xx, that
every answer had the expected status, that the server's memory stayed bounded, and that the usage
figures at /admin/usage equal what was sent (no lost counts).

    python3 bench/soak.py                  # 5 minutes
    python3 bench/soak.py --duration 30    # a quick run

Only 127.0.0.1 is contacted. Exit status 0 when every check holds.
"""
import argparse
import http.client
import json
import multiprocessing
import os
import secrets
import sys
import time

from benchlib import HOST, ROOT, build_example, free_port, send, start, stop

# (kind, path, key name or None, expected status)
KINDS = [
    ("valid", "/orders", "valid", 200),
    ("unknown", "/orders", "unknown", 401),
    ("expired", "/orders", "expired", 401),
    ("wrong_scope", "/orders", "writer", 403),
    ("missing", "/orders", None, 401),
]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def worker(port, keys, deadline, queue):
    sent = {kind: 0 for kind, *_ in KINDS}
    statuses = {}
    unexpected = 0
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    i = 0
    while time.time() < deadline:
        kind, path, key_name, expected = KINDS[i % len(KINDS)]
        i += 1
        headers = {"x-api-key": keys[key_name]} if key_name else {}
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            statuses["connection error"] = statuses.get("connection error", 0) + 1
            conn.close()
            conn = http.client.HTTPConnection(HOST, port, timeout=10)
            continue
        sent[kind] += 1
        statuses[response.status] = statuses.get(response.status, 0) + 1
        if response.status != expected:
            unexpected += 1
    conn.close()
    queue.put((sent, statuses, unexpected))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=300, help="seconds of load (default 300)")
    parser.add_argument("--workers", type=int, default=4, help="client processes (default 4)")
    parser.add_argument("--max-growth-kib", type=int, default=16384,
                        help="largest RSS growth accepted between warm-up and the end (default 16 MiB)")
    args = parser.parse_args()

    binary = build_example()
    port = free_port()
    keys = {name: "soak-" + secrets.token_hex(24) for name in ["valid", "expired", "writer", "admin", "unknown"]}
    env = {
        "ROCKET_PORT": str(port),
        "ROCKET_ADDRESS": HOST,
        "ROCKET_LOG_LEVEL": "off",
        "RUST_LOG": os.environ.get("RUST_LOG", "info"),
        "API_KEY_VALID": keys["valid"] + ";scopes=read:orders",
        "API_KEY_EXPIRED": keys["expired"] + ";scopes=read:orders;expires=2001-01-01T00:00:00Z",
        "API_KEY_WRITER": keys["writer"] + ";scopes=write:orders",
        "API_KEY_ADMIN": keys["admin"] + ";scopes=admin",
    }
    server = start([binary], env, port, os.path.join(ROOT, "target", "soak-server.log"),
                   unset=("API_KEYS_FILE", "API_KEY"))
    try:
        # Warm up, then note the memory the load starts from.
        send(port, "/health", {}, 200)
        rss_start = rss_kib(server.pid)

        queue = multiprocessing.Queue()
        deadline = time.time() + args.duration
        started = time.time()
        procs = [multiprocessing.Process(target=worker, args=(port, keys, deadline, queue))
                 for _ in range(args.workers)]
        for p in procs:
            p.start()
        results = [queue.get() for _ in procs]
        for p in procs:
            p.join()
        elapsed = time.time() - started
        rss_end = rss_kib(server.pid)

        sent = {kind: sum(r[0][kind] for r in results) for kind, *_ in KINDS}
        statuses = {}
        for r in results:
            for status, n in r[1].items():
                statuses[status] = statuses.get(status, 0) + n
        unexpected = sum(r[2] for r in results)

        conn = http.client.HTTPConnection(HOST, port)
        conn.request("GET", "/admin/usage", headers={"x-api-key": keys["admin"]})
        usage = json.loads(conn.getresponse().read())
        conn.close()
    finally:
        stop(server)

    by_name = {k["name"]: k for k in usage["keys"]}
    checks = [
        ("valid keys accepted", sent["valid"], by_name["valid"]["accepted"]),
        ("expired rejections", sent["expired"], by_name["expired"]["rejected"].get("expired", 0)),
        ("wrong-scope rejections", sent["wrong_scope"], by_name["writer"]["rejected"].get("scope", 0)),
        ("unknown-key rejections", sent["unknown"], usage["unattributed"].get("unknown", 0)),
        ("missing-key rejections", sent["missing"], usage["unattributed"].get("missing", 0)),
    ]
    total = sum(sent.values())
    five_xx = sum(n for s, n in statuses.items() if isinstance(s, int) and s >= 500)
    growth = rss_end - rss_start

    print(f"\nsoak: {total} requests in {elapsed:.0f} s ({total / elapsed:.0f}/s), {args.workers} workers")
    print(f"{'status':<18}{'count':>12}")
    for status in sorted(statuses, key=str):
        print(f"{status!s:<18}{statuses[status]:>12}")
    print(f"\n{'usage check':<26}{'sent':>12}{'counted':>12}")
    for name, want, got in checks:
        print(f"{name:<26}{want:>12}{got:>12}{'' if want == got else '   MISMATCH'}")
    print(f"\nserver RSS: {rss_start} KiB after warm-up, {rss_end} KiB at the end ({growth:+} KiB)")

    failures = []
    if five_xx:
        failures.append(f"{five_xx} answers were 5xx")
    if unexpected:
        failures.append(f"{unexpected} answers had an unexpected status")
    if "connection error" in statuses:
        failures.append(f"{statuses['connection error']} connection errors")
    failures += [f"{name}: sent {want}, counted {got}" for name, want, got in checks if want != got]
    if growth > args.max_growth_kib:
        failures.append(f"memory grew by {growth} KiB")
    passed = len(checks) + 4 - len(failures)
    print(f"\nsoak: {passed} passed, {len(failures)} failed")
    for f in failures:
        print(f"  FAILED: {f}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
