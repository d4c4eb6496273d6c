#!/usr/bin/env python3
"""Time and memory to load a large keys file: runs the `keystore` bench target.

    python3 bench/keystore.py                      # 100,000 keys, 7 loads
    python3 bench/keystore.py --keys 1000000 --runs 3

Equivalent to `cargo bench --bench keystore -- --keys N --runs R`; see benches/keystore.rs for
what is measured and how (a counting global allocator, and VmHWM as a cross-check).
bench/database_load.py runs the same target with a throwaway PostgreSQL cluster, to load the
same keys from the key table beside the file.
"""

import argparse
import subprocess

from benchlib import ROOT


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--keys", type=int, default=100_000, help="entries in the file (default 100000)")
    p.add_argument("--runs", type=int, default=7, help="loads to take the median of (default 7)")
    args = p.parse_args()
    subprocess.run(["cargo", "bench", "--locked", "--bench", "keystore", "--",
                    "--keys", str(args.keys), "--runs", str(args.runs)], cwd=ROOT, check=True)


if __name__ == "__main__":
    main()
