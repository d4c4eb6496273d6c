#!/usr/bin/env python3
"""Requests per second of the orders example against the Flask recipe it replaces, same load,
same machine, same run.

    python3 bench/vs_flask.py                          # 7 rounds of 3 s per case, about 90 s
    python3 bench/vs_flask.py --duration 2 --rounds 7  # about a minute

Rocket: the release orders example (`RUST_LOG=warn`: each rejection is logged, up to the
default `rejected_log_limit`). Flask: bench/flask_app.py under gunicorn with as many sync
workers as cores, installed by this script into bench/.venv (git ignores it); Flask logs a
WARNING per unauthorized attempt, to a file as the Rocket server's stdout is. Cases, in turn
each round (order reversed every other round): GET /secure-data with a valid key, and with an
unknown key, on each server. wrk keeps connections alive; gunicorn's sync workers close them
after each response, as that recipe's deployments do.
"""

import argparse
import os
import subprocess
import sys

from benchlib import (HOST, ROOT, WORK, build_example, ensure_wrk, free_port, log, machine, median,
                      run, start, table, wrk)

KEY = "bench-key-0123456789abcdef0123456789"
UNKNOWN = "not-a-configured-key-0123456789abcdef"
VENV = os.path.join(ROOT, "bench", ".venv")


def ensure_venv():
    python = os.path.join(VENV, "bin", "python")
    gunicorn = os.path.join(VENV, "bin", "gunicorn")
    if not os.path.exists(gunicorn):
        run([sys.executable, "-m", "venv", VENV])
        run([python, "-m", "pip", "install", "-q", "-r",
             os.path.join(ROOT, "bench", "requirements.txt")])
    versions = subprocess.run(
        [python, "-c", "import flask, gunicorn, importlib.metadata as m; "
         "print('Flask', m.version('flask'), '+ gunicorn', gunicorn.__version__)"],
        check=True, capture_output=True, text=True).stdout.strip()
    return gunicorn, versions


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=int, default=3, help="seconds per run (default 3)")
    p.add_argument("--rounds", type=int, default=7, help="rounds (default 7)")
    p.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    args = p.parse_args()

    ensure_wrk()
    gunicorn, versions = ensure_venv()
    binary = build_example()
    os.makedirs(WORK, exist_ok=True)
    cores = os.cpu_count()

    rocket_port, flask_port = free_port(), free_port()
    start([binary], {
        "ROCKET_ADDRESS": HOST, "ROCKET_PORT": str(rocket_port), "ROCKET_LOG_LEVEL": "off",
        "RUST_LOG": "warn", "API_KEY_BENCH": f"{KEY};scopes=read:orders",
    }, rocket_port, os.path.join(WORK, "vs-flask-rocket.log"))
    start([gunicorn, "--chdir", os.path.join(ROOT, "bench"), "-w", str(cores),
           "-b", f"{HOST}:{flask_port}", "flask_app:app"],
          {"API_KEYS": KEY}, flask_port, os.path.join(WORK, "vs-flask-flask.log"))

    cases = {}
    for server, port in (("rocket", rocket_port), ("flask", flask_port)):
        url = f"http://{HOST}:{port}/secure-data"
        cases[f"{server} accepted"] = (url, [f"x-api-key: {KEY}"], False)
        cases[f"{server} rejected"] = (url, [f"x-api-key: {UNKNOWN}"], True)

    log("warming up")
    for url, headers, _ in cases.values():
        wrk(url, 1, args.connections, headers)

    rps = {name: [] for name in cases}
    for r in range(args.rounds):
        order = list(cases) if r % 2 == 0 else list(reversed(cases))
        for name in order:
            url, headers, rejected = cases[name]
            value, non2xx, total = wrk(url, args.duration, args.connections, headers)
            if (non2xx == total) != rejected or 0 < non2xx < total:
                raise SystemExit(f"{name}: {non2xx} of {total} responses were not 2xx")
            rps[name].append(value)
            log(f"round {r + 1}/{args.rounds} {name:16} {value:10.0f} req/s")

    print(f"\nmachine: {machine()}; {versions}, {cores} sync workers; wrk 1 thread, "
          f"{args.connections} connections, {args.rounds} rounds x {args.duration} s per case\n")
    table(["case", "median req/s", "runs (req/s)"],
          [[n, f"{median(v):.0f}", " ".join(f"{x:.0f}" for x in v)] for n, v in rps.items()])
    print()
    rows = []
    for outcome in ("accepted", "rejected"):
        ratios = [a / b for a, b in zip(rps[f"rocket {outcome}"], rps[f"flask {outcome}"])]
        rows.append([f"rocket / flask, {outcome}", f"{median(ratios):.1f}x"])
    table(["ratio of req/s (median of per-round ratios)", "value"], rows)


if __name__ == "__main__":
    main()
