"""Helpers shared by the benchmark scripts: tools, servers on 127.0.0.1, wrk runs, tables.

Standard library only. Every server is started here on a free loopback port and stopped by its
own process id when the script ends, whatever happens.
"""

import atexit
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Under /target, which git ignores and `cargo clean` removes.
WORK = os.path.join(ROOT, "target", "bench")
HOST = "127.0.0.1"

_children = []


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(cmd, **kw):
    log("+ " + " ".join(cmd))
    return subprocess.run(cmd, check=True, **kw)


def machine():
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores, {cpu}"


def ensure_wrk():
    """wrk from Debian's packages, installed if missing."""
    if shutil.which("wrk"):
        return "wrk"
    if os.geteuid() != 0:
        sys.exit("wrk is not installed; run `apt-get install wrk` as root, then this script again")
    run(["apt-get", "update", "-qq"], stdout=subprocess.DEVNULL)
    run(["apt-get", "install", "-y", "-qq", "wrk"], stdout=subprocess.DEVNULL)
    return "wrk"


def build_example():
    run(["cargo", "build", "--release", "--locked", "--example", "orders"], cwd=ROOT)
    return os.path.join(ROOT, "target", "release", "examples", "orders")


BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def generated_key(seed):
    """A key of the shape `apikey new` makes (`rak_`, 43 base62 characters, a 6-character CRC32
    checksum), derived from `seed` so runs are repeatable. Such keys are what the README
    recommends, and a presented one has its checksum verified before it is hashed."""
    import hashlib
    import zlib
    digest = hashlib.sha512(seed.encode()).digest()
    body = "rak_" + "".join(BASE62[b % 62] for b in digest[:43])
    n = zlib.crc32(body.encode())
    sum_ = ""
    for _ in range(6):
        sum_ = BASE62[n % 62] + sum_
        n //= 62
    return body + sum_


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start(cmd, env, port, output, ready_path="/health", timeout=30, unset=()):
    """Starts a server, its stdout and stderr into `output`, and waits until it answers.
    `env` is added to this process's environment, less the variables named in `unset`."""
    out = open(output, "wb")
    full_env = {k: v for k, v in {**os.environ, **env}.items() if k not in unset or k in env}
    proc = subprocess.Popen(
        cmd, env=full_env, stdout=out, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, start_new_session=True,
    )
    _children.append(proc)
    deadline = time.monotonic() + timeout
    url = f"http://{HOST}:{port}{ready_path}"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{cmd[0]} exited with {proc.returncode}; see {output}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.2)
    sys.exit(f"{cmd[0]} did not answer {url} within {timeout}s; see {output}")


def send(port, path, headers, n):
    """`n` GET requests on one keep-alive connection; the set of statuses answered. Also the
    warm-up before a measurement."""
    import http.client
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    statuses = set()
    for _ in range(n):
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        r.read()
        statuses.add(r.status)
    conn.close()
    return statuses


def stop(proc, timeout=30):
    """Stops a server started by `start` now (SIGTERM, then waits), rather than at exit."""
    if proc.poll() is None:
        proc.terminate()
    proc.wait(timeout=timeout)


@atexit.register
def _stop_children():
    for proc in _children:
        if proc.poll() is None:
            # The server's own process group (start_new_session): gunicorn's workers go with it.
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in _children:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def wrk(url, duration, connections, headers=(), threads=1):
    """One wrk run: (requests per second, responses that were not 2xx, total requests)."""
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency"]
    for h in headers:
        cmd += ["-H", h]
    cmd.append(url)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True,
                         timeout=duration + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    if errors:
        log(f"  {url}: {errors.group(0)}")
    return rps, int(m.group(1)) if m else 0, total


def cpu_seconds(pid):
    """User + system CPU time of a process, all its threads, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def median(xs):
    return statistics.median(xs)


def table(headers, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    print(line(headers))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))
