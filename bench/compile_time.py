#!/usr/bin/env python3
"""Compile-time cost of the attribute: a crate of 50 `#[require_api_key]` handlers against the
same 50 handlers with the guard written by hand (`Authorized<S>` and `RequiredScopes` impls).

    python3 bench/compile_time.py               # 7 rebuilds of each, alternating
    python3 bench/compile_time.py --runs 3      # about a minute once dependencies are built

Both crates are generated into target/bench/compile (git ignores it), as library crates of one
workspace with a path dependency on this repository and this repository's Cargo.lock, so they
share every dependency build. What is timed is `cargo build -p <crate>` after touching its
src/lib.rs: the crate alone, no linking of an executable (which would add the same seconds to
both). Two modes, each after one untimed warm-up build: `incremental` (cargo's default: the
macros run again, most later work is reused from the incremental cache) and `full`
(`CARGO_INCREMENTAL=0`: expansion, type checking and codegen of the whole crate, what a first
or a clean build of that crate costs). Builds alternate between the two crates; medians and the
median of per-pair ratios are reported.

The 50 handlers use 10 scopes, 5 handlers each; the hand-written crate declares one
`RequiredScopes` type per scope (what a person would write), the attribute one hidden type per
handler.
"""

import argparse
import os
import shutil
import subprocess
import time

from benchlib import ROOT, WORK, log, machine, median, table

HANDLERS = 50
SCOPES = 10


def handler_body(i):
    return f'    format!("handler {i}")\n'


def macro_crate():
    src = "use rocket::get;\nuse rocket_api_key::require_api_key;\n\n"
    for i in range(HANDLERS):
        src += (f'#[require_api_key(scope = "read:area{i % SCOPES}")]\n'
                f'#[get("/h{i}")]\npub fn h{i}() -> String {{\n{handler_body(i)}}}\n\n')
    return src + routes_fn()


def manual_crate():
    src = ("use rocket::get;\n"
           "use rocket_api_key::scope::{RequiredScopes, ScopeRequirement};\n"
           "use rocket_api_key::Authorized;\n\n")
    for s in range(SCOPES):
        src += (f"pub struct ReadArea{s};\nimpl RequiredScopes for ReadArea{s} {{\n"
                f"    const REQUIREMENT: ScopeRequirement = "
                f'ScopeRequirement::AllOf(&["read:area{s}"]);\n}}\n\n')
    for i in range(HANDLERS):
        src += (f'#[get("/h{i}")]\npub fn h{i}(_key: Authorized<ReadArea{i % SCOPES}>) -> String {{\n'
                f"{handler_body(i)}}}\n\n")
    return src + routes_fn()


def routes_fn():
    names = ", ".join(f"h{i}" for i in range(HANDLERS))
    return f"pub fn routes() -> Vec<rocket::Route> {{\n    rocket::routes![{names}]\n}}\n"


def write_workspace(base):
    os.makedirs(base, exist_ok=True)
    with open(os.path.join(base, "Cargo.toml"), "w") as f:
        f.write('[workspace]\nmembers = ["with_attribute", "by_hand"]\nresolver = "2"\n')
    shutil.copy(os.path.join(ROOT, "Cargo.lock"), os.path.join(base, "Cargo.lock"))
    for name, src in (("with_attribute", macro_crate()), ("by_hand", manual_crate())):
        os.makedirs(os.path.join(base, name, "src"), exist_ok=True)
        with open(os.path.join(base, name, "Cargo.toml"), "w") as f:
            f.write(f'[package]\nname = "{name}"\nversion = "0.0.0"\nedition = "2021"\n'
                    f'publish = false\n\n[dependencies]\n'
                    f'rocket = {{ version = "0.5.2", default-features = false, features = ["json"] }}\n'
                    f'rocket-api-key = {{ path = "{ROOT}" }}\n')
        with open(os.path.join(base, name, "src", "lib.rs"), "w") as f:
            f.write(src)


MODES = {"incremental": "1", "full": "0"}


def build(base, crate, profile, mode):
    lib = os.path.join(base, crate, "src", "lib.rs")
    os.utime(lib)
    cmd = ["cargo", "build", "-q", "-p", crate] + (["--release"] if profile == "release" else [])
    # Each mode its own target dir: switching CARGO_INCREMENTAL would rebuild the path
    # dependency (this repository) every time.
    env = {**os.environ, "CARGO_INCREMENTAL": MODES[mode],
           "CARGO_TARGET_DIR": os.path.join(base, "target", mode)}
    start = time.monotonic()
    subprocess.run(cmd, cwd=base, check=True, env=env)
    return time.monotonic() - start


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=7, help="rebuilds of each crate (default 7)")
    p.add_argument("--profile", choices=["dev", "release"], default="dev")
    p.add_argument("--modes", default="incremental,full",
                   help="comma-separated: incremental, full (default both)")
    args = p.parse_args()

    base = os.path.join(WORK, "compile")
    write_workspace(base)
    log("building the dependencies once per mode (the first time takes minutes)")
    results = {}
    for mode in args.modes.split(","):
        for crate in ("with_attribute", "by_hand"):
            build(base, crate, args.profile, mode)  # warm-up, untimed
        times = {"with_attribute": [], "by_hand": []}
        for r in range(args.runs):
            order = ["with_attribute", "by_hand"] if r % 2 == 0 else ["by_hand", "with_attribute"]
            for crate in order:
                times[crate].append(build(base, crate, args.profile, mode))
                log(f"{mode} run {r + 1}/{args.runs} {crate:15} {times[crate][-1]:.2f} s")
        results[mode] = times

    print(f"\nmachine: {machine()}; {HANDLERS} handlers, {SCOPES} scopes, `cargo build "
          f"-p <crate>{' --release' if args.profile == 'release' else ''}` after touching "
          f"src/lib.rs, {args.runs} runs each\n")
    rows = []
    for mode, times in results.items():
        for crate, t in times.items():
            rows.append([mode, crate, f"{median(t):.2f}", " ".join(f"{x:.2f}" for x in t)])
    table(["mode", "crate", "median s", "runs (s)"], rows)
    print()
    table(["ratio with_attribute / by_hand (median of per-run ratios)", "value", "target"],
          [[mode, f"{median([a / b for a, b in zip(t['with_attribute'], t['by_hand'])]):.3f}",
            "<= 1.1"] for mode, t in results.items()])

if __name__ == "__main__":
    main()
