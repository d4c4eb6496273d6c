#!/usr/bin/env python3
"""Time and memory to load keys at start-up from the PostgreSQL key table, beside the keys file.

    python3 bench/database_load.py                  # 100,000 keys, 7 runs
    python3 bench/database_load.py --keys 1000000 --runs 3

Starts a throwaway PostgreSQL cluster as tests/support/postgres.rs does (initdb as the `postgres`
user when run as root, password authentication with a random password, a free loopback port, no
Unix socket), runs `cargo bench --bench keystore -- --database-url <url> --keys N --runs R`
against it, and stops and removes the cluster whatever happens. See benches/keystore.rs for what
is measured. `RAK_POSTGRES_BIN` names the directory of `initdb`, `postgres` and `psql`; else
they are taken from PATH or the newest /usr/lib/postgresql/*/bin.
"""

import argparse
import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from benchlib import HOST, ROOT, free_port, log

# The cluster's superuser, and the database initdb creates, as in the test harness.
USER = "rak"
DATABASE = "postgres"


def binaries():
    """`initdb`, `postgres` and `psql`: from RAK_POSTGRES_BIN, else the first directory on PATH
    with both `initdb` and `postgres`, else the newest /usr/lib/postgresql/<version>/bin."""
    def exe(d, name):
        path = os.path.join(d, name)
        return path if os.path.isfile(path) and os.access(path, os.X_OK) else None

    if os.environ.get("RAK_POSTGRES_BIN"):
        dirs = [os.environ["RAK_POSTGRES_BIN"]]
    else:
        def version(d):
            return [int(n) for n in d.split("/")[-2].split(".") if n.isdigit()]
        versioned = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
        dirs = os.environ.get("PATH", "").split(os.pathsep) + versioned
    for d in dirs:
        if exe(d, "initdb") and exe(d, "postgres"):
            psql = next((p for p in (exe(x, "psql") for x in dirs) if p), None)
            if psql:
                return exe(d, "initdb"), exe(d, "postgres"), psql
    raise SystemExit("PostgreSQL is not installed: no `initdb`, `postgres` and `psql` on PATH or "
                     "in /usr/lib/postgresql/*/bin (Debian: apt-get install postgresql)")


def pg_free_env(**extra):
    """This environment without any PG… variable: the cluster is the only server reachable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(extra)
    return env


class Cluster:
    """A cluster in a temporary directory; `stop()` shuts it down and removes the directory."""

    def __init__(self):
        self.initdb, self.postgres, self.psql = binaries()
        # PostgreSQL refuses to run as root: `postgres` (a Debian install's user), else `nobody`.
        self.user = None
        if os.geteuid() == 0:
            for name in ("postgres", "nobody"):
                try:
                    self.user = pwd.getpwnam(name)
                    break
                except KeyError:
                    pass
            else:
                raise SystemExit("running as root, and no `postgres` or `nobody` user to run "
                                 "PostgreSQL as")
        self.dir = tempfile.mkdtemp(prefix="rak-postgres-")
        # Open to the server's user; the data directory and password file are its own.
        os.chmod(self.dir, 0o755)
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "postgres.log")
        self.password = secrets.token_hex(16)
        self.server = None
        self.port = None

    def _as_user(self):
        if self.user is None:
            return {}
        return {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}

    def start(self):
        os.mkdir(self.data)
        pwfile = os.path.join(self.dir, "password")
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.password)
        if self.user is not None:
            for path in (self.data, pwfile):
                os.chown(path, self.user.pw_uid, self.user.pw_gid)
        try:
            # --no-sync: the cluster lives only as long as the benchmark.
            subprocess.run([self.initdb, "-A", "scram-sha-256", "-U", USER, "-E", "UTF8",
                            "--locale=C", "--no-sync", f"--pwfile={pwfile}", "-D", self.data],
                           cwd=self.dir, env=pg_free_env(), stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, check=True, **self._as_user())
        finally:
            os.remove(pwfile)
        # A port free a moment ago may be taken before the server binds it: try another.
        for attempt in range(4):
            self.port = free_port()
            with open(self.log, "ab") as out:
                # Loopback TCP only; no Unix socket, whose default directory may be missing or
                # shared with a system cluster.
                self.server = subprocess.Popen(
                    [self.postgres, "-D", self.data, "-p", str(self.port),
                     "-c", f"listen_addresses={HOST}", "-c", "unix_socket_directories=",
                     "-c", "fsync=off", "-c", "max_connections=100"],
                    cwd=self.dir, env=pg_free_env(), stdin=subprocess.DEVNULL, stdout=out,
                    stderr=subprocess.STDOUT, start_new_session=True, **self._as_user())
            if self._wait_until_ready():
                return
            if "could not bind" not in self._log():
                break
        raise SystemExit(f"PostgreSQL did not start:\n{self._log()[-3000:]}")

    def url(self):
        # The cluster serves no TLS, which the key table otherwise requires.
        return f"postgres://{USER}:{self.password}@{HOST}:{self.port}/{DATABASE}?sslmode=disable"

    def _log(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def _wait_until_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                self.server = None
                return False
            # The password goes through the environment, not the command line.
            ready = subprocess.run(
                [self.psql, "-X", "-At", "-w", "-c", "select 1", "-d",
                 f"host={HOST} port={self.port} user={USER} dbname={DATABASE} connect_timeout=10"],
                env=pg_free_env(PGPASSWORD=self.password), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if ready.returncode == 0:
                return True
            time.sleep(0.05)
        raise SystemExit(f"PostgreSQL did not accept connections within {timeout}s:\n"
                         f"{self._log()[-3000:]}")

    def stop(self):
        """Immediate shutdown (the data is about to go), by the postmaster's own process id; a
        kill after 30 s; then the directory is removed."""
        if self.server is not None and self.server.poll() is None:
            self.server.send_signal(signal.SIGQUIT)
            try:
                self.server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
        self.server = None
        shutil.rmtree(self.dir, ignore_errors=True)


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--keys", type=int, default=100_000, help="keys in the table and the file "
                   "(default 100000)")
    p.add_argument("--runs", type=int, default=7, help="loads of each to take the median of "
                   "(default 7)")
    args = p.parse_args()
    cluster = Cluster()
    try:
        cluster.start()
        log(f"PostgreSQL on {HOST}:{cluster.port}, data in {cluster.dir}")
        # The URL's password is on the command line of a process that lives as long as the
        # run, against a cluster on loopback that lives as long too.
        done = subprocess.run(["cargo", "bench", "--locked", "--bench", "keystore", "--",
                               "--database-url", cluster.url(), "--keys", str(args.keys),
                               "--runs", str(args.runs)], cwd=ROOT, env=pg_free_env())
    finally:
        cluster.stop()
    # The exit status alone: a traceback would print the command line, URL included.
    sys.exit(done.returncode)


if __name__ == "__main__":
    main()
