#!/usr/bin/env python3
"""Benchmark: Archway against the other ways to cache a registry, on this machine (`make bench`).

What it starts (all on 127.0.0.1, all data in one temporary folder that is removed at the end):
  - upstream: a real `docker-registry` (distribution 2.8) seeded over the registry API with a
    256 MiB and a 1 GiB random blob (pushed from files in chunked PATCH uploads) and two
    single-architecture images (`bench/app:amd64-1.0`, `bench/app:arm64-1.0`: 3 layers, a config
    and an OCI manifest each);
  - the peers, each pointing at that upstream:
      archway       the release binary (`--archway`), with a policy that synthesizes
                    `bench/app:multi` from the two per-architecture tags;
      distribution  a second docker-registry with `proxy.remoteurl` (its own storage);
      nginx-cache   nginx with `proxy_cache` (key $uri + $http_accept, blobs cached a year,
                    manifests 10 minutes, `proxy_cache_lock on`, buffering and sendfile on);
      nginx-static  nginx serving the 256 MiB blob's file at the same URL path with sendfile
                    (the practical limit for a warm blob).

What it measures (sections, pick with --only), each from --runs runs, reporting the median:
  warm-blob   server CPU seconds per GiB (utime+stime from /proc/<pid>/stat; nginx: master and
              all its children) and throughput, over 4 sequential curl downloads of the cached
              256 MiB blob;
  cold-blob   8 concurrent curl clients on a freshly pushed 128 MiB blob: upstream GETs of that
              digest (the upstream's own "response completed" log lines, counted once the
              upstream has gone quiet), first and slowest time to first byte, total time; every
              client's bytes are kept and checked against the digest afterwards;
  manifests   `wrk -t2 -c16 --latency` on a cached manifest by tag and by digest: req/s, p99; and by
              tag on a second Archway with one event loop (nginx runs one worker);
  synth       the same on Archway's synthesized index tag, beside its plain tag rate;
  pull        `skopeo copy` of a freshly pushed image, cold then warm: seconds;
  memory      peak resident memory (VmRSS sampled every 50 ms, and VmHWM after resetting it via
              clear_refs) during 8 concurrent downloads of a cold 1 GiB blob;
  fills       Archway alone: the wrk p99 of a warm manifest by tag, quiet and while 8 cold 256 MiB
              blobs are downloaded (written, hashed, fdatasync'ed and renamed) through it;
  auth-flood  Archway alone, a second instance with htpasswd users (bcrypt cost 10): the wrk p99 of a
              warm public manifest, quiet and while scripts/hostile_clients.py keeps 50 connections
              sending new wrong passwords (every 20 ms each), and /_archway/health's time meanwhile.
  tls         the production path: Archway, nginx and distribution's proxy over TLS (a self-signed
              P-256 certificate): the warm 256 MiB blob with curl over HTTP/1.1 and HTTP/2 (server
              CPU per GiB, MiB/s; nginx static), warm manifests by tag and digest with wrk over TLS
              HTTP/1.1 and h2load over HTTP/2 (16 connections x 8 streams; nginx proxy_cache), and a
              cold skopeo pull and a cold `ctr content fetch` (containerd) over HTTPS.
  proxy       the proxy mode: a warm 256 MiB blob (4 curl downloads, HTTP/1.1: server CPU per GiB,
              MiB/s) and a warm manifest by tag (20 000 curl requests, 16 at once, on reused
              connections: req/s) through Archway as HTTPS_PROXY (CONNECT, then TLS with its CA's
              leaf), through Archway's mirror URL over TLS (the same process), and through nginx as
              the popular MITM registry proxy: one unconstrained CA, proxy_cache over TLS, and the
              CONNECT hop of ngx_http_proxy_connect_module (absent from Debian's nginx) played by
              scripts/connect_relay.py, whose CPU counts as nginx's.
  page        Archway alone, its own instance with 10 000 repositories in its catalog: server CPU per
              request of the operator's page and of its images JSON (100 sequential requests each).
  scan        Archway alone: an image whose layer is a 256 MiB tar (gzip) is pulled with skopeo; the
              background scan's CPU per GiB decompressed (Archway's own counter of the scan thread's
              CPU time) against `tar -tzf` of the same file.

Output: a table on stdout (each peer's median and the ratio Archway/peer), PASS/MISS for the
targets, and in --out: bench-<UTC timestamp>.json (raw samples, medians, ratios, commit, nproc),
latest.json, and a PNG bar chart of the ratios drawn by gnuplot.

Everything it starts it stops by pid, in a finally block (also on Ctrl-C and SIGTERM).
Python 3 standard library only; needs docker-registry, nginx, curl, wrk, skopeo, gnuplot, openssl,
h2load (nghttp2-client) and containerd (ctr) for the tls section.
"""

import argparse
import collections
import datetime
import hashlib
import http.client
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import zlib
from dataclasses import dataclass, field

from registry_harness import GiB, KiB, MiB, OCI_MANIFEST, RegistryAPI, free_port, wait_http

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")
NGINX = "/usr/sbin/nginx"

ACCEPT = ", ".join([
    OCI_MANIFEST,
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
])
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")

UPSTREAM_NAME = "bench.test"          # Archway's name for the upstream (its default upstream)
APP_REPO = "bench/app"                # the per-architecture images, and the synthesized tag
SYNTH_TAG = "multi"
WARM_BLOB_SIZE = 256 * MiB
COLD_BLOB_SIZE = 128 * MiB
FILL_BLOB_SIZE = 256 * MiB
HUGE_BLOB_SIZE = 1 * GiB
CLIENTS = 8                           # concurrent clients in cold-blob and memory
WARM_DOWNLOADS = 4                    # sequential downloads per warm-blob run
DOWNLOAD_TIMEOUT = 900                # seconds, per curl

ARCHWAY, DISTRIBUTION, NGINX_CACHE, NGINX_STATIC = "archway", "distribution", "nginx-cache", "nginx-static"
PEERS = [ARCHWAY, DISTRIBUTION, NGINX_CACHE, NGINX_STATIC]
# The proxy section's own peers: Archway's mirror listener (the same process), and nginx as the
# popular MITM registry proxy. Reported in the table beside the others.
ARCHWAY_MIRROR, NGINX_MITM = "archway-mirror", "nginx-mitm"
REPORTED = PEERS + [ARCHWAY_MIRROR, NGINX_MITM]
PROXIES = [ARCHWAY, DISTRIBUTION, NGINX_CACHE]
LOWER, HIGHER = "lower", "higher"

# key, label, unit, which direction is better. The table and the plot follow this order.
METRICS = [
    ("warm_blob_cpu", "warm blob 256 MiB: server CPU", "s/GiB", LOWER),
    ("warm_blob_total_cpu", "warm blob: server+client CPU", "s/GiB", LOWER),
    ("warm_blob_machine_cpu", "warm blob: whole-machine CPU", "s/GiB", LOWER),
    ("warm_blob_rate", "warm blob 256 MiB: throughput", "MiB/s", HIGHER),
    ("cold_fetches", "cold blob 128 MiB x8: upstream GETs", "count", LOWER),
    ("cold_ttfb_first", "cold blob x8: first TTFB", "s", LOWER),
    ("cold_ttfb_slowest", "cold blob x8: slowest TTFB", "s", LOWER),
    ("cold_ttfb_spread", "cold blob x8: slowest/first TTFB", "x", LOWER),
    ("cold_total", "cold blob x8: total time", "s", LOWER),
    ("manifest_tag_rps", "manifest by tag, warm", "req/s", HIGHER),
    ("manifest_tag_p99", "manifest by tag, warm: p99", "ms", LOWER),
    ("manifest_digest_rps", "manifest by digest, warm", "req/s", HIGHER),
    ("manifest_digest_p99", "manifest by digest, warm: p99", "ms", LOWER),
    ("manifest_tag_1loop_rps", "manifest by tag, warm, 1 event loop", "req/s", HIGHER),
    ("manifest_tag_1loop_p99", "manifest by tag, 1 event loop: p99", "ms", LOWER),
    ("synth_rps", "synthesized index by tag, warm", "req/s", HIGHER),
    ("synth_p99", "synthesized index by tag: p99", "ms", LOWER),
    ("pull_cold", "skopeo pull 3x4 MiB, cold", "s", LOWER),
    ("pull_warm", "skopeo pull 3x4 MiB, warm", "s", LOWER),
    ("peak_rss", "peak RSS, 8x 1 GiB cold", "MiB", LOWER),
    ("fill_quiet_p99", "manifest p99, no fills", "ms", LOWER),
    ("fill_loaded_p99", "manifest p99, 8 cold 256 MiB fills", "ms", LOWER),
    ("auth_quiet_p99", "manifest p99, auth on, quiet", "ms", LOWER),
    ("auth_flood_p99", "manifest p99, 50 wrong-password conns", "ms", LOWER),
    ("auth_flood_health", "health under wrong passwords", "ms", LOWER),
    ("scan_cpu", "binary scan, 256 MiB gzip layer: CPU", "s/GiB", LOWER),
    ("scan_tar_cpu", "the same layer: tar -tzf CPU (reference)", "s/GiB", LOWER),
    ("tls_blob_h1_cpu", "warm blob over TLS, HTTP/1.1: server CPU", "s/GiB", LOWER),
    ("tls_blob_h1_rate", "warm blob over TLS, HTTP/1.1", "MiB/s", HIGHER),
    ("tls_blob_h2_cpu", "warm blob over HTTP/2: server CPU", "s/GiB", LOWER),
    ("tls_blob_h2_rate", "warm blob over HTTP/2", "MiB/s", HIGHER),
    ("tls_manifest_tag_h1_rps", "manifest by tag, TLS HTTP/1.1 (wrk)", "req/s", HIGHER),
    ("tls_manifest_tag_h1_p99", "manifest by tag, TLS HTTP/1.1: p99", "ms", LOWER),
    ("tls_manifest_digest_h1_rps", "manifest by digest, TLS HTTP/1.1", "req/s", HIGHER),
    ("tls_manifest_tag_h2_rps", "manifest by tag, HTTP/2 (h2load 16x8)", "req/s", HIGHER),
    ("tls_manifest_digest_h2_rps", "manifest by digest, HTTP/2", "req/s", HIGHER),
    ("tls_pull", "skopeo pull 3x4 MiB over HTTPS, cold", "s", LOWER),
    ("tls_ctr_pull", "ctr content fetch 3x4 MiB over HTTPS, cold", "s", LOWER),
    ("proxy_blob_cpu", "warm blob via HTTPS_PROXY (TLS, HTTP/1.1): server CPU", "s/GiB", LOWER),
    ("proxy_blob_rate", "warm blob via HTTPS_PROXY", "MiB/s", HIGHER),
    ("proxy_manifest_rps", "manifest by tag via HTTPS_PROXY (curl, 16 at once)", "req/s", HIGHER),
    ("page_cpu", "operator page, 10 000 repositories: CPU", "ms", LOWER),
    ("page_api_cpu", "the same, its images JSON", "ms", LOWER),
]


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def median(values):
    return statistics.median(values) if values else None


# ---------------------------------------------------------------- processes and /proc


def proc_stat(pid):
    """The fields of /proc/<pid>/stat after the command name: [0] state, [1] ppid, [11] utime, [12] stime."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    return data[data.rindex(")") + 2:].split()


def child_pids(parent):
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if int(proc_stat(int(entry))[1]) == parent:
                    children.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return children


def cpu_seconds(pids):
    """{pid: utime+stime in seconds} for the pids that still exist."""
    result = {}
    for pid in pids:
        try:
            fields = proc_stat(pid)
            result[pid] = (int(fields[11]) + int(fields[12])) / CLK_TCK
        except OSError:
            pass
    return result


def machine_busy_seconds():
    """CPU time the whole machine spent busy (user, nice, system, irq, softirq, steal): on
    loopback, kernel work on behalf of a transfer can land in softirq threads of no process."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def cpu_delta(before, after):
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def proc_status_kib(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def reset_peak_rss(pids):
    for pid in pids:
        try:
            with open(f"/proc/{pid}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass


def io_counters(pid):
    """Bytes read and written by a process (rchar + wchar: sockets and files alike)."""
    total = 0
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            if line.startswith(("rchar:", "wchar:")):
                total += int(line.split()[1])
    return total


class Supervisor:
    """Owns every process the benchmark starts; stop_all() ends them by pid, clients first."""

    def __init__(self, work):
        self.work = work
        self.servers = []
        self.clients = set()
        self.lock = threading.Lock()

    def start_server(self, name, argv, env=None):
        logfile = open(os.path.join(self.work, f"{name}.log"), "wb")
        # A session of its own: Ctrl-C reaches the benchmark only, which stops servers in order.
        process = subprocess.Popen(argv, stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True, env={**os.environ, **(env or {})})
        logfile.close()
        process.log_path = logfile.name
        self.servers.append((name, process))
        return process

    def track(self, process):
        with self.lock:
            self.clients.add(process)

    def untrack(self, process):
        with self.lock:
            self.clients.discard(process)

    def stop_all(self):
        with self.lock:
            clients = list(self.clients)
        for process in clients:
            if process.poll() is None:
                process.kill()
                process.wait()
        for _, process in reversed(self.servers):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for _, process in reversed(self.servers):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# ---------------------------------------------------------------- registry API (pushes go to the upstream)


# ---------------------------------------------------------------- upstream and peers


class Upstream:
    """The docker-registry everything pulls from. Its JSON log has one 'response completed' line per
    request, with method and URI: that is where upstream fetches are counted."""

    def __init__(self, supervisor, work):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = os.path.join(work, "upstream.yml")
        write_distribution_config(config, self.port, os.path.join(work, "upstream-storage"), level="info")
        self.process = supervisor.start_server("upstream", ["docker-registry", "serve", config])
        self.log_path = os.path.join(work, "upstream.log")
        self.log_offset = 0
        self.requests = collections.Counter()    # (method, path) -> completed requests
        wait_http(f"{self.url}/v2/", self.process)
        self.api = RegistryAPI(self.url)

    def wait_quiet(self, quiet=0.75, timeout=120):
        """Waits until the upstream has read and written nothing for `quiet` seconds: no transfer in
        flight, so every fetch started so far has completed and logged its line."""
        deadline = time.time() + timeout
        last, since = io_counters(self.process.pid), time.time()
        while time.time() < deadline:
            time.sleep(0.1)
            now = io_counters(self.process.pid)
            if now != last:
                last, since = now, time.time()
            elif time.time() - since >= quiet:
                return
        log("warning: upstream never went quiet; counts may miss a transfer in flight")

    def poll_log(self):
        with open(self.log_path, "rb") as f:
            f.seek(self.log_offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        self.log_offset += end
        for line in data[:end].splitlines():
            if b"response completed" not in line:
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            self.requests[entry.get("http.request.method"), entry.get("http.request.uri", "").split("?")[0]] += 1

    def blob_requests(self, digest, method="GET"):
        """How many requests for that blob (under any repository) the upstream has completed."""
        self.wait_quiet()
        self.poll_log()
        suffix = f"/blobs/{digest}"
        return sum(n for (m, path), n in self.requests.items() if m == method and path.endswith(suffix))


@dataclass
class Peer:
    """A server under test: its name, base URL and process (nginx: the master, whose children count too)."""
    name: str
    url: str
    process: subprocess.Popen
    multi_process: bool = False

    def pids(self):
        pids = [self.process.pid]
        if self.multi_process:
            pids += child_pids(self.process.pid)
        return pids

    def alive(self):
        return self.process.poll() is None


def write_distribution_config(path, port, storage, level="error", proxy=None):
    text = (
        "version: 0.1\n"
        f"log:\n  level: {level}\n  formatter: json\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {storage}\n  cache:\n    blobdescriptor: inmemory\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  secret: archway-bench\n"
    )
    if proxy:
        text += f"proxy:\n  remoteurl: {proxy}\n"
    with open(path, "w") as f:
        f.write(text)


def start_archway(supervisor, work, binary, upstream, loops=None):
    """Archway on its defaults, or with `loops` event loops (NIO's NIO_SINGLETON_GROUP_LOOP_COUNT;
    the default is one per core), each in a configuration and cache folder of its own."""
    port = free_port()
    name = ARCHWAY if loops is None else f"{ARCHWAY}-{loops}loop"
    policies = os.path.join(work, "policies")
    os.makedirs(policies, exist_ok=True)
    with open(os.path.join(policies, "bench.yaml"), "w") as f:
        f.write("rules:\n"
                "  - name: bench-multi\n"
                f"    repository: {UPSTREAM_NAME}/{APP_REPO}\n"
                f"    tags: [\"{SYNTH_TAG}\"]\n"
                "    members:\n"
                "      - from: \"{repository}:amd64-1.0\"\n"
                "      - from: \"{repository}:arm64-1.0\"\n"
                "        platform: linux/arm64\n")
    config = os.path.join(work, f"{name}.yaml")
    with open(config, "w") as f:
        f.write(f"listen: 127.0.0.1:{port}\n"
                f"storage:\n  path: {os.path.join(work, f'{name}-cache')}\n"
                f"upstreams:\n  - name: {UPSTREAM_NAME}\n    url: {upstream.url}\n"
                f"default-upstream: {UPSTREAM_NAME}\n"
                f"policies: {policies}\n")
    check = subprocess.run([binary, "policy", "check", policies, "--config", config], capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"archway policy check failed:\n{check.stdout}{check.stderr}")
    process = supervisor.start_server(name, [binary, "serve", "--config", config, "--log-level", "warning",
                                              "--log-format", "json"],
                                      env=None if loops is None else {"NIO_SINGLETON_GROUP_LOOP_COUNT": str(loops)})
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/v2/", process)
    return Peer(ARCHWAY, url, process)


def start_distribution_proxy(supervisor, work, upstream):
    port = free_port()
    config = os.path.join(work, "distribution.yml")
    write_distribution_config(config, port, os.path.join(work, "distribution-storage"), proxy=upstream.url)
    process = supervisor.start_server(DISTRIBUTION, ["docker-registry", "serve", config])
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/v2/", process)
    return Peer(DISTRIBUTION, url, process)


def nginx_main_config(prefix, server_block, http_extra=""):
    temp = os.path.join(prefix, "temp")
    user = "user root;\n" if os.geteuid() == 0 else ""   # workers must read files in our 0700 temp dir
    return (
        f"{user}worker_processes 1;\n"
        f"pid {prefix}/nginx.pid;\n"
        f"error_log {prefix}/error.log warn;\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        "  access_log off;\n"
        "  sendfile on;\n  tcp_nopush on;\n"
        "  keepalive_requests 1000000;\n"
        "  default_type application/octet-stream;\n"
        f"  client_body_temp_path {temp}/body;\n  proxy_temp_path {temp}/proxy;\n"
        f"  fastcgi_temp_path {temp}/fastcgi;\n  uwsgi_temp_path {temp}/uwsgi;\n  scgi_temp_path {temp}/scgi;\n"
        f"{http_extra}"
        f"{server_block}"
        "}\n"
    )


def start_nginx(supervisor, name, prefix, config_text, port):
    os.makedirs(os.path.join(prefix, "temp"), exist_ok=True)
    config = os.path.join(prefix, "nginx.conf")
    with open(config, "w") as f:
        f.write(config_text)
    process = supervisor.start_server(name, [NGINX, "-p", prefix, "-c", config, "-g", "daemon off;"])
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/v2/", process)
    return Peer(name, url, process, multi_process=True)


def nginx_cache_config(prefix, port, upstream, tls=""):
    """nginx as the popular registry caches configure it: proxy_cache keyed by URI and Accept,
    one upstream request per cache entry (proxy_cache_lock, long lock timeouts for big blobs).
    `tls`: the certificate lines, and the listener takes TLS with HTTP/2."""
    http_extra = (
        f"  proxy_cache_path {prefix}/cache levels=1:2 keys_zone=registry:32m max_size=64g inactive=7d use_temp_path=off;\n"
        f"  upstream origin {{ server 127.0.0.1:{upstream.port}; keepalive 16; }}\n"
    )
    server = (
        "  server {\n"
        f"    listen 127.0.0.1:{port}{' ssl http2' if tls else ''};\n{tls}"
        "    proxy_http_version 1.1;\n    proxy_set_header Connection \"\";\n    proxy_set_header Host $http_host;\n"
        "    proxy_buffering on;\n"
        "    proxy_cache registry;\n    proxy_cache_key \"$uri $http_accept\";\n"
        "    proxy_cache_lock on;\n    proxy_cache_lock_timeout 600s;\n    proxy_cache_lock_age 600s;\n"
        "    proxy_read_timeout 600s;\n"
        "    add_header X-Cache-Status $upstream_cache_status always;\n"
        "    location ~ \"^/v2/.+/blobs/sha256:[0-9a-f]{64}$\" { proxy_pass http://origin; proxy_cache_valid 200 365d; }\n"
        "    location ~ ^/v2/.+/manifests/ { proxy_pass http://origin; proxy_cache_valid 200 10m; }\n"
        "    location /v2/ { proxy_pass http://origin; proxy_cache off; }\n"
        "  }\n"
    )
    return nginx_main_config(prefix, server, http_extra)


def start_nginx_cache(supervisor, work, upstream):
    port, prefix = free_port(), os.path.join(work, "nginx-cache")
    return start_nginx(supervisor, NGINX_CACHE, prefix, nginx_cache_config(prefix, port, upstream), port)


def start_nginx_static(supervisor, work, blob_path, blob_url_path):
    """nginx serving one blob's file from disk at its registry URL path, with sendfile."""
    port, prefix = free_port(), os.path.join(work, "nginx-static")
    root = os.path.join(prefix, "root")
    target = os.path.join(root, blob_url_path.lstrip("/"))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    os.link(blob_path, target)
    server = f"  server {{\n    listen 127.0.0.1:{port};\n    location /v2/ {{ root {root}; }}\n  }}\n"
    return start_nginx(supervisor, NGINX_STATIC, prefix, nginx_main_config(prefix, server), port)


# ---------------------------------------------------------------- clients


@dataclass
class DownloadResult:
    status: int
    size: int
    ttfb: float       # seconds from the client's start to the first response byte (curl time_starttransfer)
    total: float
    path: str = ""    # the body, when it was kept for checking


class Download:
    """One curl process fetching a URL to /dev/null, or to a file (save_to) whose sha256 is checked
    after the timed part, so that hashing on the clients does not compete with the server for CPU."""

    FORMAT = "result: %{http_code} %{size_download} %{time_starttransfer} %{time_total}\n"

    def __init__(self, supervisor, url, save_to=None):
        self.supervisor, self.path = supervisor, save_to
        argv = ["curl", "-sS", "--max-time", str(DOWNLOAD_TIMEOUT), "-w", self.FORMAT, "-o", save_to or "/dev/null", url]
        self.curl = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        supervisor.track(self.curl)

    def wait(self):
        out = self.curl.communicate()[0].decode(errors="replace")
        self.supervisor.untrack(self.curl)
        match = re.search(r"^result: (\d+) (\d+) ([\d.]+) ([\d.]+)$", out, re.M)
        if not match or self.curl.returncode != 0:
            raise RuntimeError(f"curl failed ({self.curl.returncode}): {out.strip()}")
        return DownloadResult(int(match[1]), int(match[2]), float(match[3]), float(match[4]), self.path or "")


def download_all(supervisor, url, count, keep_dir=None):
    """count concurrent downloads (bodies kept in keep_dir when given, else discarded); returns their
    results and the wall time until the last one ended."""
    start = time.monotonic()
    downloads = [Download(supervisor, url, os.path.join(keep_dir, f"client-{i}") if keep_dir else None)
                 for i in range(count)]
    results = [d.wait() for d in downloads]
    return results, time.monotonic() - start


def download(supervisor, url, keep_dir=None):
    return download_all(supervisor, url, 1, keep_dir)[0][0]


def file_sha256(path):
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while piece := f.read(8 * MiB):
            sha.update(piece)
    return "sha256:" + sha.hexdigest()


def check_blob(result, digest, size, who):
    """Status and size always; the bytes' sha256 when the body was kept (the file is removed)."""
    got = ""
    if result.path:
        got = file_sha256(result.path)
        os.remove(result.path)
    if result.status != 200 or result.size != size or (got and got != digest):
        raise RuntimeError(f"{who}: got status {result.status}, {result.size} bytes, {got or 'unhashed'}; "
                           f"wanted 200, {size} bytes, {digest}")


def get_manifest(url, accept=ACCEPT):
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        conn.request("GET", parts.path, headers={"Accept": accept})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def parse_duration_ms(text):
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(url, seconds):
    """wrk -t2 -c16 with the manifest Accept header; returns req/s, p99 ms and the error counts."""
    out = subprocess.run(["wrk", "-t2", "-c16", f"-d{seconds}s", "--latency", "-H", f"Accept: {ACCEPT}", url],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),
        "p99_ms": parse_duration_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M)[1]),
        "requests": int(re.search(r"(\d+) requests in", out)[1]),
        "non2xx": int(non2xx[1]) if non2xx else 0,
        "socket_errors": socket_errors[1] if socket_errors else "",
    }


class RssSampler:
    """Samples the summed VmRSS of some pids every 50 ms in a thread; also resets and reads VmHWM."""

    def __init__(self, pids, interval=0.05):
        self.pids, self.interval = pids, interval
        self.peak_kib = 0
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def sample(self):
        self.peak_kib = max(self.peak_kib, sum(proc_status_kib(pid, "VmRSS") for pid in self.pids))

    def run(self):
        while not self.stop_event.wait(self.interval):
            self.sample()

    def __enter__(self):
        reset_peak_rss(self.pids)
        self.sample()
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        self.thread.join()
        hwm = sum(proc_status_kib(pid, "VmHWM") for pid in self.pids)
        self.peak_kib = max(self.peak_kib, hwm)


# ---------------------------------------------------------------- results


@dataclass
class Metric:
    key: str
    label: str
    unit: str
    better: str
    samples: dict = field(default_factory=dict)    # peer -> [value per run]

    def medians(self):
        return {peer: median(values) for peer, values in self.samples.items()}

    def ratios(self):
        """Archway's median over each other peer's."""
        medians = self.medians()
        ours = medians.get(ARCHWAY)
        return {peer: (ours / value if ours is not None and value else None)
                for peer, value in medians.items() if peer != ARCHWAY}


class Results:
    def __init__(self):
        self.metrics = {key: Metric(key, label, unit, better) for key, label, unit, better in METRICS}
        self.raw = {}          # section -> list of per-run details

    def add(self, key, peer, value):
        self.metrics[key].samples.setdefault(peer, []).append(value)

    def detail(self, section, entry):
        self.raw.setdefault(section, []).append(entry)

    def median(self, key, peer):
        return median(self.metrics[key].samples.get(peer, []))


# ---------------------------------------------------------------- the sections


class Bench:
    """Holds the upstream, the peers and what the sections share (seeded content, options)."""

    def __init__(self, args, supervisor, work, upstream, peers, seeds):
        self.args, self.supervisor, self.work, self.upstream = args, supervisor, work, upstream
        self.peers, self.seeds = peers, seeds
        self.results = Results()
        self.fresh_count = 0

    def peer_list(self, names):
        return [self.peers[name] for name in names if name in self.peers]

    def fresh_blob(self, repo, size):
        self.fresh_count += 1
        path = os.path.join(self.work, f"fresh-{self.fresh_count}.bin")
        digest = self.upstream.api.push_random_blob(repo, path, size)
        os.remove(path)
        return digest

    def ensure_cached(self, peer, path, digest, size):
        """Downloads (checking the bytes) until a download costs the upstream no GET: then it is warm."""
        for _ in range(5):
            before = self.upstream.blob_requests(digest)
            check_blob(download(self.supervisor, peer.url + path, self.work), digest, size, peer.name)
            if peer.name == NGINX_STATIC or self.upstream.blob_requests(digest) == before:
                return
        raise RuntimeError(f"{peer.name} still fetches {digest} upstream after 5 downloads")

    # 1. warm blob

    def warm_blob(self):
        digest, path = self.seeds["warm_digest"], self.seeds["warm_path"]
        peers = self.peer_list(PEERS)
        for peer in peers:
            self.ensure_cached(peer, path, digest, WARM_BLOB_SIZE)
        for run in range(self.args.runs):
            for peer in peers:
                # On loopback the kernel charges the receiving side's TCP work partly to the
                # sender, depending on timing; the clients' CPU (curl, reaped children) shows where
                # the rest went.
                clients_before = resource.getrusage(resource.RUSAGE_CHILDREN)
                machine_before = machine_busy_seconds()
                before, start = cpu_seconds(peer.pids()), time.monotonic()
                for _ in range(WARM_DOWNLOADS):
                    check_blob(download(self.supervisor, peer.url + path), digest, WARM_BLOB_SIZE, peer.name)
                wall = time.monotonic() - start
                cpu = cpu_delta(before, cpu_seconds(peer.pids()))
                clients_after = resource.getrusage(resource.RUSAGE_CHILDREN)
                machine = machine_busy_seconds() - machine_before
                client_cpu = (clients_after.ru_utime + clients_after.ru_stime) - (clients_before.ru_utime + clients_before.ru_stime)
                served = WARM_DOWNLOADS * WARM_BLOB_SIZE
                self.results.add("warm_blob_cpu", peer.name, cpu / (served / GiB))
                self.results.add("warm_blob_total_cpu", peer.name, (cpu + client_cpu) / (served / GiB))
                self.results.add("warm_blob_machine_cpu", peer.name, machine / (served / GiB))
                self.results.add("warm_blob_rate", peer.name, served / MiB / wall)
                self.results.detail("warm-blob", {"run": run, "peer": peer.name, "cpu_s": cpu, "client_cpu_s": client_cpu, "machine_cpu_s": machine, "wall_s": wall,
                                                  "bytes": served})
                log(f"  warm blob {peer.name}: {cpu / (served / GiB):.3f} s/GiB, {served / MiB / wall:.0f} MiB/s")

    # 2. cold blob, 8 concurrent clients

    def cold_blob(self):
        for run in range(self.args.runs):
            digest = self.fresh_blob("bench/cold", COLD_BLOB_SIZE)
            path = f"/v2/bench/cold/blobs/{digest}"
            for peer in self.peer_list(PROXIES):
                before = self.upstream.blob_requests(digest)
                head_before = self.upstream.blob_requests(digest, "HEAD")
                results, wall = download_all(self.supervisor, peer.url + path, CLIENTS, self.work)
                for result in results:
                    check_blob(result, digest, COLD_BLOB_SIZE, peer.name)
                fetches = self.upstream.blob_requests(digest) - before
                heads = self.upstream.blob_requests(digest, "HEAD") - head_before
                ttfbs = sorted(r.ttfb for r in results)
                self.results.add("cold_fetches", peer.name, fetches)
                self.results.add("cold_ttfb_first", peer.name, ttfbs[0])
                self.results.add("cold_ttfb_slowest", peer.name, ttfbs[-1])
                self.results.add("cold_ttfb_spread", peer.name, ttfbs[-1] / max(ttfbs[0], 1e-6))
                self.results.add("cold_total", peer.name, wall)
                self.results.detail("cold-blob", {"run": run, "peer": peer.name, "digest": digest,
                                                  "upstream_gets": fetches, "upstream_heads": heads,
                                                  "ttfb_s": [r.ttfb for r in results],
                                                  "client_total_s": [r.total for r in results], "wall_s": wall})
                log(f"  cold blob {peer.name}: {fetches} upstream GETs, TTFB {ttfbs[0] * 1000:.1f}-"
                    f"{ttfbs[-1] * 1000:.1f} ms, {wall:.2f} s")

    # 3. manifests by tag and by digest, warm

    def warm_manifest(self, peer, path, digest):
        for _ in range(2):
            status, _, body = get_manifest(peer.url + path)
            got = "sha256:" + hashlib.sha256(body).hexdigest()
            if status != 200 or (digest and got != digest):
                raise RuntimeError(f"{peer.name} {path}: status {status}, digest {got}, wanted {digest}")
        return body

    def manifests(self):
        digest = self.seeds["amd64_digest"]
        paths = {"tag": f"/v2/{APP_REPO}/manifests/amd64-1.0", "digest": f"/v2/{APP_REPO}/manifests/{digest}"}
        peers = self.peer_list(PROXIES)
        for peer in peers:
            for path in paths.values():
                self.warm_manifest(peer, path, digest)
        # Archway on one event loop, as nginx runs one worker here: the same requests, like for
        # like per core, and the p99 without a second loop competing with wrk for the 2 cores.
        single = None
        if ARCHWAY in self.peers:
            single = start_archway(self.supervisor, self.work, self.args.archway, self.upstream, loops=1)
            self.warm_manifest(single, paths["tag"], digest)
        for run in range(self.args.runs):
            for peer in peers:
                for kind, path in paths.items():
                    stats = run_wrk(peer.url + path, self.args.wrk_seconds)
                    self.record_wrk(f"manifest_{kind}", "manifests", run, peer, kind, stats)
            if single:
                stats = run_wrk(single.url + paths["tag"], self.args.wrk_seconds)
                self.record_wrk("manifest_tag_1loop", "manifests", run, single, "tag, one event loop", stats)

    def record_wrk(self, key, section, run, peer, kind, stats):
        self.results.add(f"{key}_rps", peer.name, stats["rps"])
        self.results.add(f"{key}_p99", peer.name, stats["p99_ms"])
        self.results.detail(section, {"run": run, "peer": peer.name, "kind": kind, **stats})
        errors = f", {stats['non2xx']} non-2xx" if stats["non2xx"] else ""
        errors += f", socket errors {stats['socket_errors']}" if stats["socket_errors"] else ""
        log(f"  {kind} {peer.name}: {stats['rps']:.0f} req/s, p99 {stats['p99_ms']:.2f} ms{errors}")

    # 6. synthesized index by tag, warm (Archway only)

    def synth(self):
        peer = self.peers[ARCHWAY]
        body = self.warm_manifest(peer, f"/v2/{APP_REPO}/manifests/{SYNTH_TAG}", None)
        index = json.loads(body)
        if index.get("mediaType") not in INDEX_TYPES or len(index.get("manifests", [])) != 2:
            raise RuntimeError(f"Archway's {SYNTH_TAG} is not a 2-child index: {body[:300]!r}")
        plain_path = f"/v2/{APP_REPO}/manifests/amd64-1.0"
        measure_plain = not self.results.metrics["manifest_tag_rps"].samples.get(ARCHWAY)
        if measure_plain:
            self.warm_manifest(peer, plain_path, self.seeds["amd64_digest"])
        for run in range(self.args.runs):
            self.record_wrk("synth", "synth", run, peer, "synthesized tag",
                            run_wrk(peer.url + f"/v2/{APP_REPO}/manifests/{SYNTH_TAG}", self.args.wrk_seconds))
            if measure_plain:
                self.record_wrk("manifest_tag", "manifests", run, peer, "tag",
                                run_wrk(peer.url + plain_path, self.args.wrk_seconds))

    # 4. full image pull with skopeo, cold and warm

    def skopeo_copy(self, peer, reference):
        destination = tempfile.mkdtemp(prefix="pull-", dir=self.work)
        host = re.sub(r"^https?://", "", peer.url)
        start = time.monotonic()
        result = subprocess.run(["skopeo", "copy", "--src-tls-verify=false", f"docker://{host}/{reference}",
                                 f"dir:{destination}"], capture_output=True, text=True, timeout=600)
        seconds = time.monotonic() - start
        shutil.rmtree(destination, ignore_errors=True)
        if result.returncode != 0:
            raise RuntimeError(f"skopeo copy from {peer.name} failed: {result.stderr.strip()}")
        return seconds

    def pull(self):
        for run in range(self.args.runs):
            repo = f"bench/pull{run}"
            self.upstream.api.push_image(repo, "1.0", "amd64").manifest
            for peer in self.peer_list(PROXIES):
                cold = self.skopeo_copy(peer, f"{repo}:1.0")
                warm = self.skopeo_copy(peer, f"{repo}:1.0")
                self.results.add("pull_cold", peer.name, cold)
                self.results.add("pull_warm", peer.name, warm)
                self.results.detail("pull", {"run": run, "peer": peer.name, "cold_s": cold, "warm_s": warm})
                log(f"  skopeo {peer.name}: cold {cold:.2f} s, warm {warm:.2f} s")

    # 5. peak memory during 8 concurrent cold 1 GiB downloads

    def memory(self):
        for run in range(self.args.runs):
            if run == 0:
                repo, digest = "bench/huge", self.seeds["huge_digest"]
            else:
                repo = f"bench/huge{run}"
                digest = self.fresh_blob(repo, HUGE_BLOB_SIZE)
            url_path = f"/v2/{repo}/blobs/{digest}"
            for peer in self.peer_list(PROXIES):
                before = self.upstream.blob_requests(digest)
                idle_kib = sum(proc_status_kib(pid, "VmRSS") for pid in peer.pids())
                with RssSampler(peer.pids()) as sampler:
                    results, wall = download_all(self.supervisor, peer.url + url_path, CLIENTS)
                for result in results:
                    check_blob(result, digest, HUGE_BLOB_SIZE, peer.name)
                peak = sampler.peak_kib / KiB
                fetches = self.upstream.blob_requests(digest) - before
                self.results.add("peak_rss", peer.name, peak)
                self.results.detail("memory", {"run": run, "peer": peer.name, "peak_rss_mib": peak,
                                               "rss_before_mib": idle_kib / KiB, "wall_s": wall,
                                               "upstream_gets": fetches})
                log(f"  memory {peer.name}: peak {peak:.0f} MiB (before {idle_kib / KiB:.0f} MiB), {wall:.1f} s, "
                    f"{fetches} upstream GETs")


    # 8. warm manifests while blobs are filled (Archway only)

    def fills(self):
        peer = self.peers[ARCHWAY]
        path = f"/v2/{APP_REPO}/manifests/amd64-1.0"
        self.warm_manifest(peer, path, self.seeds["amd64_digest"])
        for run in range(self.args.runs):
            digests = [self.fresh_blob("bench/fill", FILL_BLOB_SIZE) for _ in range(CLIENTS)]
            quiet = run_wrk(peer.url + path, self.args.wrk_seconds)
            started = time.monotonic()
            downloads = [Download(self.supervisor, peer.url + f"/v2/bench/fill/blobs/{digest}") for digest in digests]
            loaded = run_wrk(peer.url + path, self.args.wrk_seconds)
            results = [download.wait() for download in downloads]
            for result in results:
                check_blob(result, None, FILL_BLOB_SIZE, peer.name)
            fills_s = max(result.total for result in results)
            self.results.add("fill_quiet_p99", ARCHWAY, quiet["p99_ms"])
            self.results.add("fill_loaded_p99", ARCHWAY, loaded["p99_ms"])
            self.results.detail("fills", {"run": run, "quiet": quiet, "loaded": loaded, "fills_s": fills_s,
                                          "wall_s": time.monotonic() - started})
            log(f"  fills: p99 {quiet['p99_ms']:.2f} ms quiet, {loaded['p99_ms']:.2f} ms during {CLIENTS} fills "
                f"(the fills took {fills_s:.1f} s of the {self.args.wrk_seconds} s measured)")

    # 9. wrong passwords (Archway only, its own instance with users)

    def auth_flood(self):
        import crypt  # bcrypt through the system's libcrypt (deprecated in 3.11, still there)
        secret = crypt.crypt("s3cret", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 10))
        htpasswd = os.path.join(self.work, "htpasswd")
        with open(htpasswd, "w") as f:
            f.write(f"robot:{secret}\n")
        port = free_port()
        config = os.path.join(self.work, "archway-auth.yaml")
        with open(config, "w") as f:
            f.write(f"listen: 127.0.0.1:{port}\n"
                    f"storage:\n  path: {os.path.join(self.work, 'archway-auth-cache')}\n"
                    f"upstreams:\n  - name: {UPSTREAM_NAME}\n    url: {self.upstream.url}\n"
                    f"  - name: private.bench\n    url: {self.upstream.url}\n    private: true\n"
                    f"default-upstream: {UPSTREAM_NAME}\n"
                    f"auth:\n  htpasswd: {htpasswd}\n  required: false\n")
        process = self.supervisor.start_server("archway-auth", [self.args.archway, "serve", "--config", config,
                                                                "--log-level", "warning", "--log-format", "json"])
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/v2/", process)
        peer = Peer(ARCHWAY, url, process)
        path = f"/v2/{APP_REPO}/manifests/amd64-1.0"
        self.warm_manifest(peer, path, self.seeds["amd64_digest"])
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hostile_clients.py")
        for run in range(self.args.runs):
            quiet = run_wrk(url + path, self.args.wrk_seconds)
            attack = subprocess.Popen([sys.executable, script, "wrong-passwords", f"{url}/v2/private.bench/{APP_REPO}/manifests/1",
                                       "--connections", "50", "--interval", "0.02",
                                       "--seconds", str(self.args.wrk_seconds + 3)],
                                      stdout=subprocess.PIPE, text=True)
            self.supervisor.track(attack)
            try:
                time.sleep(1)
                attacked = run_wrk(url + path, self.args.wrk_seconds)
                started = time.monotonic()
                health = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                health.request("GET", "/_archway/health")
                health_status = health.getresponse().status
                health_ms = (time.monotonic() - started) * 1000
                health.close()
                report = json.loads(attack.communicate(timeout=60)[0].strip().splitlines()[-1])
            finally:
                self.supervisor.untrack(attack)
            self.results.add("auth_quiet_p99", ARCHWAY, quiet["p99_ms"])
            self.results.add("auth_flood_p99", ARCHWAY, attacked["p99_ms"])
            self.results.add("auth_flood_health", ARCHWAY, health_ms)
            self.results.detail("auth-flood", {"run": run, "quiet": quiet, "attacked": attacked, "health_status": health_status,
                                               "health_ms": health_ms, "attack": report})
            log(f"  auth-flood: p99 {quiet['p99_ms']:.2f} ms quiet, {attacked['p99_ms']:.2f} ms attacked "
                f"({attacked['rps']:.0f} req/s), health {health_ms:.1f} ms, attackers answered {report['statuses']}")


# name -> (method, peers it needs)
SCAN_LAYER_SIZE = 256 * MiB


def write_scan_layer(path, size):
    """A gzip layer of a tar holding an arm64 ELF header at app/server and `size` bytes of hex text
    (compresses about 2x, as real layers do). Returns (digest, compressed size, diff id)."""
    elf = bytes([0x7F, 0x45, 0x4C, 0x46, 2, 1, 1, 0] + [0] * 8 + [2, 0, 183, 0]) + bytes(44)

    def header(name, length, mode):
        block = bytearray(512)
        block[0:len(name)] = name.encode()
        block[100:107] = f"{mode:07o}".encode()
        block[108:115] = block[116:123] = b"0000000"
        block[124:135] = f"{length:011o}".encode()
        block[136:147] = b"00000000000"
        block[148:156] = b" " * 8
        block[156:157] = b"0"
        block[257:262] = b"ustar"
        block[263:265] = b"00"
        block[148:155] = f"{sum(block):06o}\0".encode()
        return bytes(block)

    digest, diff = hashlib.sha256(), hashlib.sha256()
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    with open(path, "wb") as out:
        def put(data):
            diff.update(data)
            packed = compressor.compress(data)
            digest.update(packed)
            out.write(packed)
        put(header("app/server", len(elf), 0o755) + elf + bytes(512 - len(elf)))
        put(header("data/text", size, 0o644))
        left = size
        while left > 0:
            chunk = os.urandom(min(left, 8 * MiB) // 2).hex().encode()[:left]
            put(chunk)
            left -= len(chunk)
        put(bytes((512 - size % 512) % 512) + bytes(1024))
        tail = compressor.flush()
        digest.update(tail)
        out.write(tail)
    return "sha256:" + digest.hexdigest(), os.path.getsize(path), "sha256:" + diff.hexdigest()


def archway_counter(peer, name):
    """The sum of a counter's series in Archway's /metrics."""
    body = http_get(peer.url + "/metrics")
    return sum(float(line.rsplit(" ", 1)[1]) for line in body.splitlines()
               if line.startswith(name + " ") or line.startswith(name + "{"))


def http_get(url):
    parsed = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    try:
        connection.request("GET", parsed.path + (f"?{parsed.query}" if parsed.query else ""))
        return connection.getresponse().read().decode()
    finally:
        connection.close()


def bench_scan(bench):
    """10. The background scan of an image's binaries: the image is pulled (skopeo), Archway scans
    it once its layer is stored; its CPU per GiB decompressed, from its own counters, against
    `tar -tzf` (GNU tar through gzip) reading the same layer."""
    peer = bench.peers[ARCHWAY]
    for run in range(bench.args.runs):
        repo = f"bench/scan{run}"
        layer = os.path.join(bench.work, f"scan-{run}.tar.gz")
        digest, size, diff_id = write_scan_layer(layer, SCAN_LAYER_SIZE)
        api = bench.upstream.api
        api.push_file(repo, layer, digest)
        config = json.dumps({"architecture": "arm64", "os": "linux", "config": {"Entrypoint": ["/app/server"]},
                             "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
        config_digest = api.push_bytes(repo, config)
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": size}],
        }, separators=(",", ":")).encode()
        api.push_manifest(repo, "1.0", manifest, OCI_MANIFEST)
        scans = archway_counter(peer, "archway_binary_scans_total")
        cpu = archway_counter(peer, "archway_binary_scan_cpu_seconds_total")
        scanned = archway_counter(peer, "archway_binary_scan_bytes_total")
        pull_s = bench.skopeo_copy(peer, f"{repo}:1.0")
        deadline = time.monotonic() + 300
        while archway_counter(peer, "archway_binary_scans_total") <= scans:
            if time.monotonic() > deadline:
                raise RuntimeError("Archway did not scan the image within 300 s")
            time.sleep(0.05)
        gib = (archway_counter(peer, "archway_binary_scan_bytes_total") - scanned) / GiB
        archway_cpu = (archway_counter(peer, "archway_binary_scan_cpu_seconds_total") - cpu) / gib
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(["tar", "-tzf", layer], check=True, stdout=subprocess.DEVNULL)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        tar_cpu = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / (SCAN_LAYER_SIZE / GiB)
        os.remove(layer)
        bench.results.add("scan_cpu", ARCHWAY, archway_cpu)
        bench.results.add("scan_tar_cpu", ARCHWAY, tar_cpu)
        bench.results.detail("scan", {"run": run, "archway_s_per_gib": archway_cpu, "tar_s_per_gib": tar_cpu,
                                      "scanned_gib": gib, "layer_bytes": size, "pull_s": pull_s})
        log(f"  scan: Archway {archway_cpu:.2f} s/GiB, tar -tzf {tar_cpu:.2f} s/GiB "
            f"({archway_cpu / tar_cpu:.2f}x); the pull took {pull_s:.1f} s")


def make_certificate(work):
    """A self-signed P-256 certificate for 127.0.0.1, as a cluster mirror's would be."""
    key, certificate = os.path.join(work, "tls.key"), os.path.join(work, "tls.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", key, "-out", certificate, "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return certificate, key


def wait_https(url, process, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited ({process.returncode}); see {process.log_path}")
        result = subprocess.run(["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", url], capture_output=True, text=True)
        if result.stdout.strip() not in ("", "000"):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer over TLS within {seconds} s")


def start_tls_peers(bench, certificate, key):
    """Archway, nginx (static for the blob, proxy_cache for manifests) and distribution's proxy,
    each over TLS with HTTP/1.1 and HTTP/2 where it offers them, as a production mirror runs."""
    supervisor, work, upstream = bench.supervisor, bench.work, bench.upstream
    peers = {}
    port = free_port()
    config = os.path.join(work, "archway-tls.yaml")
    with open(config, "w") as f:
        f.write(f"listen: 127.0.0.1:{port}\nstorage:\n  path: {os.path.join(work, 'archway-tls-cache')}\n"
                f"tls:\n  certificate: {certificate}\n  key: {key}\n"
                f"upstreams:\n  - name: {UPSTREAM_NAME}\n    url: {upstream.url}\ndefault-upstream: {UPSTREAM_NAME}\n")
    process = supervisor.start_server("archway-tls", [bench.args.archway, "serve", "--config", config, "--log-level", "warning",
                                                      "--log-format", "json"])
    wait_https(f"https://127.0.0.1:{port}/v2/", process)
    peers[ARCHWAY] = Peer(ARCHWAY, f"https://127.0.0.1:{port}", process)

    tls = f"    ssl_certificate {certificate};\n    ssl_certificate_key {key};\n"
    port, prefix = free_port(), os.path.join(work, "nginx-static-tls")
    root = os.path.join(prefix, "root")
    target = os.path.join(root, bench.seeds["warm_path"].lstrip("/"))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    os.link(bench.seeds["warm_file"], target)
    server = f"  server {{\n    listen 127.0.0.1:{port} ssl http2;\n{tls}    location /v2/ {{ root {root}; }}\n  }}\n"
    os.makedirs(os.path.join(prefix, "temp"), exist_ok=True)
    with open(os.path.join(prefix, "nginx.conf"), "w") as f:
        f.write(nginx_main_config(prefix, server))
    process = supervisor.start_server("nginx-static-tls", [NGINX, "-p", prefix, "-c", os.path.join(prefix, "nginx.conf"), "-g", "daemon off;"])
    wait_https(f"https://127.0.0.1:{port}/v2/", process)
    peers[NGINX_STATIC] = Peer(NGINX_STATIC, f"https://127.0.0.1:{port}", process, multi_process=True)

    port, prefix = free_port(), os.path.join(work, "nginx-cache-tls")
    os.makedirs(os.path.join(prefix, "temp"), exist_ok=True)
    with open(os.path.join(prefix, "nginx.conf"), "w") as f:
        f.write(nginx_cache_config(prefix, port, upstream, tls))
    process = supervisor.start_server("nginx-cache-tls", [NGINX, "-p", prefix, "-c", os.path.join(prefix, "nginx.conf"), "-g", "daemon off;"])
    wait_https(f"https://127.0.0.1:{port}/v2/", process)
    peers[NGINX_CACHE] = Peer(NGINX_CACHE, f"https://127.0.0.1:{port}", process, multi_process=True)

    port = free_port()
    config = os.path.join(work, "distribution-tls.yml")
    write_distribution_config(config, port, os.path.join(work, "distribution-tls-storage"), proxy=upstream.url)
    with open(config) as f:
        text = f.read().replace("  secret: archway-bench\n", f"  secret: archway-bench\n  tls:\n    certificate: {certificate}\n    key: {key}\n")
    with open(config, "w") as f:
        f.write(text)
    process = supervisor.start_server("distribution-tls", ["docker-registry", "serve", config])
    wait_https(f"https://127.0.0.1:{port}/v2/", process)
    peers[DISTRIBUTION] = Peer(DISTRIBUTION, f"https://127.0.0.1:{port}", process)
    return peers


def start_containerd(supervisor, work):
    """containerd as a client (its own root, state and socket; no CRI): `ctr content fetch`
    downloads an image the way a node's pull does, without unpacking (the bench's layers are
    random bytes, not tar)."""
    directory = os.path.join(work, "containerd")
    for name in ("root", "state", "tmp", "opt"):
        os.makedirs(os.path.join(directory, name), exist_ok=True)
    socket_path = os.path.join(directory, "c.sock")
    config = os.path.join(directory, "config.toml")
    with open(config, "w") as f:
        f.write(f'version = 2\nroot = "{directory}/root"\nstate = "{directory}/state"\ntemp = "{directory}/tmp"\n'
                'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
                f'[grpc]\n  address = "{socket_path}"\n[ttrpc]\n  address = "{socket_path}.ttrpc"\n'
                f'[plugins]\n  [plugins."io.containerd.internal.v1.opt"]\n    path = "{directory}/opt"\n')
    process = supervisor.start_server("containerd", ["containerd", "--config", config])
    deadline = time.monotonic() + 30
    while subprocess.run(["ctr", "--address", socket_path, "version"], capture_output=True).returncode != 0:
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"containerd did not start; see {process.log_path}")
        time.sleep(0.1)
    return socket_path


def ctr_fetch(socket_path, work, peer, reference, certificate):
    """`ctr content fetch` of `reference` from `peer` over HTTPS (a hosts.toml trusting the
    certificate), cold; returns seconds."""
    host = re.sub(r"^https?://", "", peer.url)
    hosts = os.path.join(work, f"ctr-hosts-{peer.name}")
    os.makedirs(os.path.join(hosts, host), exist_ok=True)
    with open(os.path.join(hosts, host, "hosts.toml"), "w") as f:
        f.write(f'server = "{peer.url}"\n[host."{peer.url}"]\n  capabilities = ["pull", "resolve"]\n  ca = "{certificate}"\n')
    start = time.monotonic()
    result = subprocess.run(["ctr", "--address", socket_path, "content", "fetch", "--hosts-dir", hosts, "--platform", "linux/amd64",
                             f"{host}/{reference}"], capture_output=True, text=True, timeout=600)
    seconds = time.monotonic() - start
    if result.returncode != 0:
        raise RuntimeError(f"ctr content fetch from {peer.name} failed: {result.stderr.strip()[-400:]}")
    return seconds


def curl_download(url, protocol):
    """One download over TLS (-k: the certificate is self-signed) with HTTP/1.1 or HTTP/2; returns
    the bytes, the HTTP version curl used, and the status."""
    result = subprocess.run(["curl", "-sSk", f"--{protocol}", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{http_version}",
                             url], capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT)
    status, size, version = result.stdout.split()
    return int(status), int(size), version


def run_h2load(url, seconds):
    """h2load: 16 connections x 8 streams for `seconds`; returns req/s and the failures."""
    out = subprocess.run(["h2load", "-c16", "-m8", "-t2", f"-D{seconds}", "-H", f"Accept: {ACCEPT}", url],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    rate = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    failed = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed", out)
    if not rate:
        raise RuntimeError(f"h2load printed no rate: {out[-800:]}")
    return {"rps": float(rate[1]), "failed": int(failed[2]) if failed else None, "succeeded": int(failed[1]) if failed else None}


def bench_tls(bench):
    """12. The production path: the same warm blob and manifests over TLS, with HTTP/1.1 and HTTP/2,
    against nginx (static for the blob, proxy_cache for manifests) and distribution's proxy, each
    over TLS with a self-signed P-256 certificate; and a skopeo pull over HTTPS."""
    certificate, key = make_certificate(bench.work)
    peers = start_tls_peers(bench, certificate, key)
    containerd = start_containerd(bench.supervisor, bench.work)
    digest, path = bench.seeds["warm_digest"], bench.seeds["warm_path"]
    blob_peers = [peers[ARCHWAY], peers[NGINX_STATIC], peers[DISTRIBUTION]]
    for peer in blob_peers:
        for _ in range(3):
            if curl_download(peer.url + path, "http1.1")[1] == WARM_BLOB_SIZE:
                break
    manifest_peers = [peers[ARCHWAY], peers[NGINX_CACHE], peers[DISTRIBUTION]]
    manifest = bench.seeds["amd64_digest"]
    manifest_paths = {"tag": f"/v2/{APP_REPO}/manifests/amd64-1.0", "digest": f"/v2/{APP_REPO}/manifests/{manifest}"}
    for peer in manifest_peers:
        for manifest_path in manifest_paths.values():
            for _ in range(2):
                subprocess.run(["curl", "-sk", "-o", "/dev/null", "-H", f"Accept: {ACCEPT}", peer.url + manifest_path], check=True)
    for run in range(bench.args.runs):
        for protocol, label in (("http1.1", "h1"), ("http2", "h2")):
            for peer in blob_peers:
                before, start = cpu_seconds(peer.pids()), time.monotonic()
                versions = set()
                for _ in range(WARM_DOWNLOADS):
                    status, size, version = curl_download(peer.url + path, protocol)
                    if status != 200 or size != WARM_BLOB_SIZE:
                        raise RuntimeError(f"{peer.name} over {protocol}: status {status}, {size} bytes")
                    versions.add(version)
                wall = time.monotonic() - start
                cpu = cpu_delta(before, cpu_seconds(peer.pids()))
                served = WARM_DOWNLOADS * WARM_BLOB_SIZE
                bench.results.add(f"tls_blob_{label}_cpu", peer.name, cpu / (served / GiB))
                bench.results.add(f"tls_blob_{label}_rate", peer.name, served / MiB / wall)
                bench.results.detail("tls", {"run": run, "peer": peer.name, "what": f"blob {protocol}", "cpu_s": cpu, "wall_s": wall,
                                             "http_versions": sorted(versions)})
                log(f"  TLS blob {protocol} {peer.name}: {cpu / (served / GiB):.3f} s/GiB, {served / MiB / wall:.0f} MiB/s "
                    f"(HTTP {'/'.join(sorted(versions))})")
        for peer in manifest_peers:
            for kind, manifest_path in manifest_paths.items():
                stats = run_wrk(peer.url + manifest_path, bench.args.wrk_seconds)
                bench.results.add(f"tls_manifest_{kind}_h1_rps", peer.name, stats["rps"])
                if kind == "tag":
                    bench.results.add("tls_manifest_tag_h1_p99", peer.name, stats["p99_ms"])
                h2 = run_h2load(peer.url + manifest_path, bench.args.wrk_seconds)
                bench.results.add(f"tls_manifest_{kind}_h2_rps", peer.name, h2["rps"])
                bench.results.detail("tls", {"run": run, "peer": peer.name, "what": f"manifest {kind}", "wrk": stats, "h2load": h2})
                log(f"  TLS manifest {kind} {peer.name}: {stats['rps']:.0f} req/s (p99 {stats['p99_ms']:.2f} ms) over HTTP/1.1, "
                    f"{h2['rps']:.0f} req/s over HTTP/2 ({h2['failed']} failed)")
        repo = f"bench/tlspull{run}"
        bench.upstream.api.push_image(repo, "1.0", "amd64")
        for peer in manifest_peers:
            bench.results.add("tls_pull", peer.name, bench.skopeo_copy(peer, f"{repo}:1.0"))
            # containerd's content store is shared: each peer gets an image of its own.
            ctr_repo = f"bench/ctrpull{run}-{peer.name}"
            bench.upstream.api.push_image(ctr_repo, "1.0", "amd64")
            bench.results.add("tls_ctr_pull", peer.name, ctr_fetch(containerd, bench.work, peer, f"{ctr_repo}:1.0", certificate))


PROXY_MANIFEST_REQUESTS = 20_000


@dataclass
class ProxiedPeer:
    """A way to reach a server for the proxy section: through a proxy (CONNECT) or directly, the
    base URL the client asks, the CA it trusts, and the processes whose CPU counts."""
    name: str
    base: str
    ca: str
    processes: list
    proxy: str = ""

    def pids(self):
        pids = []
        for process, multi in self.processes:
            pids.append(process.pid)
            if multi:
                pids += child_pids(process.pid)
        return pids

    def curl(self, *arguments):
        return ["curl", "-sS", "--http1.1", "--cacert", self.ca, *(["-x", self.proxy] if self.proxy else []), *arguments]


def proxied_download(peer, path):
    result = subprocess.run(peer.curl("-o", "/dev/null", "-w", "%{http_code} %{size_download}", peer.base + path),
                            capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT)
    status, size = (result.stdout.split() + ["0", "0"])[:2]
    return int(status), int(size)


def proxied_manifests(peer, path, count, work):
    """`count` requests for a manifest, 16 at once on reused connections (curl --parallel);
    returns req/s, and fails unless every answer was 200."""
    config = os.path.join(work, f"urls-{peer.name}.txt")
    with open(config, "w") as f:
        for _ in range(count):
            f.write(f'url = "{peer.base}{path}"\noutput = "/dev/null"\n')
    start = time.monotonic()
    result = subprocess.run(peer.curl("--parallel", "--parallel-max", "16", "-H", f"Accept: {ACCEPT}", "-w", "%{http_code}\n",
                                      "-K", config), capture_output=True, text=True, timeout=600)
    wall = time.monotonic() - start
    codes = collections.Counter(result.stdout.split())
    if codes.get("200") != count:
        raise RuntimeError(f"{peer.name}: manifest answers {dict(codes)}: {result.stderr[-400:]}")
    return count / wall


def start_proxy_peers(bench):
    """Archway with a TLS mirror listener and a proxy listener (its CA from `archway ca init`);
    nginx as the popular MITM registry proxy (an unconstrained CA, a leaf for the upstream's name,
    proxy_cache over TLS) behind connect_relay.py."""
    supervisor, work, upstream = bench.supervisor, bench.work, bench.upstream
    certificate, key = make_certificate(work)
    port, proxy_port = free_port(), free_port()
    config = os.path.join(work, "archway-proxy.yaml")
    with open(config, "w") as f:
        f.write(f"listen: 127.0.0.1:{port}\nstorage:\n  path: {os.path.join(work, 'archway-proxy-cache')}\n"
                f"tls:\n  certificate: {certificate}\n  key: {key}\n"
                f"upstreams:\n  - name: {UPSTREAM_NAME}\n    url: {upstream.url}\ndefault-upstream: {UPSTREAM_NAME}\n"
                f"proxy:\n  listen: 127.0.0.1:{proxy_port}\n"
                f"  ca: {{certificate: {work}/archway-proxy-ca.crt, key: {work}/archway-proxy-ca.key}}\n")
    subprocess.run([bench.args.archway, "ca", "init", "--config", config], check=True, capture_output=True)
    process = supervisor.start_server("archway-proxy", [bench.args.archway, "serve", "--config", config, "--log-level", "warning",
                                                        "--log-format", "json"])
    wait_https(f"https://127.0.0.1:{port}/v2/", process)
    peers = {
        ARCHWAY: ProxiedPeer(ARCHWAY, f"https://{UPSTREAM_NAME}", f"{work}/archway-proxy-ca.crt", [(process, False)],
                             proxy=f"http://127.0.0.1:{proxy_port}"),
        ARCHWAY_MIRROR: ProxiedPeer(ARCHWAY_MIRROR, f"https://127.0.0.1:{port}", certificate, [(process, False)]),
    }

    mitm = os.path.join(work, "mitm")
    os.makedirs(mitm, exist_ok=True)
    steps = [
        ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", f"{mitm}/ca.key",
         "-out", f"{mitm}/ca.crt", "-days", "2", "-subj", "/CN=MITM registry proxy CA"],
        ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", f"{mitm}/leaf.key",
         "-out", f"{mitm}/leaf.csr", "-subj", f"/CN={UPSTREAM_NAME}"],
    ]
    for step in steps:
        subprocess.run(["openssl", *step], check=True, capture_output=True)
    with open(f"{mitm}/san.ext", "w") as f:
        f.write(f"subjectAltName=DNS:{UPSTREAM_NAME}\n")
    subprocess.run(["openssl", "x509", "-req", "-in", f"{mitm}/leaf.csr", "-CA", f"{mitm}/ca.crt", "-CAkey", f"{mitm}/ca.key",
                    "-CAcreateserial", "-out", f"{mitm}/leaf.crt", "-days", "2", "-extfile", f"{mitm}/san.ext"],
                   check=True, capture_output=True)
    nginx_port, prefix = free_port(), os.path.join(work, "nginx-mitm")
    os.makedirs(os.path.join(prefix, "temp"), exist_ok=True)
    tls = f"    ssl_certificate {mitm}/leaf.crt;\n    ssl_certificate_key {mitm}/leaf.key;\n"
    with open(os.path.join(prefix, "nginx.conf"), "w") as f:
        f.write(nginx_cache_config(prefix, nginx_port, upstream, tls))
    nginx = supervisor.start_server(NGINX_MITM, [NGINX, "-p", prefix, "-c", os.path.join(prefix, "nginx.conf"), "-g", "daemon off;"])
    wait_https(f"https://127.0.0.1:{nginx_port}/v2/", nginx)
    relay_port = free_port()
    relay = supervisor.start_server("connect-relay", [sys.executable, os.path.join(ROOT, "scripts/connect_relay.py"), str(relay_port),
                                                      str(nginx_port)])
    peers[NGINX_MITM] = ProxiedPeer(NGINX_MITM, f"https://{UPSTREAM_NAME}", f"{mitm}/ca.crt", [(nginx, True), (relay, False)],
                                    proxy=f"http://127.0.0.1:{relay_port}")
    deadline = time.monotonic() + 30
    while proxied_download(peers[NGINX_MITM], "/v2/")[0] != 200:
        if time.monotonic() > deadline:
            raise RuntimeError("the MITM relay did not answer")
        time.sleep(0.2)
    return peers


def bench_proxy(bench):
    """13. The proxy mode against the mirror URL and against nginx as the popular MITM proxy."""
    peers = start_proxy_peers(bench)
    path = bench.seeds["warm_path"]
    manifest_path = f"/v2/{APP_REPO}/manifests/amd64-1.0"
    for peer in peers.values():
        for _ in range(3):
            if proxied_download(peer, path) == (200, WARM_BLOB_SIZE):
                break
        proxied_manifests(peer, manifest_path, 32, bench.work)
    for run in range(bench.args.runs):
        for peer in peers.values():
            before, start = cpu_seconds(peer.pids()), time.monotonic()
            for _ in range(WARM_DOWNLOADS):
                status, size = proxied_download(peer, path)
                if (status, size) != (200, WARM_BLOB_SIZE):
                    raise RuntimeError(f"{peer.name}: status {status}, {size} bytes")
            wall = time.monotonic() - start
            cpu = cpu_delta(before, cpu_seconds(peer.pids()))
            served = WARM_DOWNLOADS * WARM_BLOB_SIZE
            bench.results.add("proxy_blob_cpu", peer.name, cpu / (served / GiB))
            bench.results.add("proxy_blob_rate", peer.name, served / MiB / wall)
            rate = proxied_manifests(peer, manifest_path, PROXY_MANIFEST_REQUESTS, bench.work)
            bench.results.add("proxy_manifest_rps", peer.name, rate)
            bench.results.detail("proxy", {"run": run, "peer": peer.name, "blob_cpu_s": cpu, "blob_wall_s": wall, "manifest_rps": rate})
            log(f"  proxy {peer.name}: blob {cpu / (served / GiB):.3f} s/GiB, {served / MiB / wall:.0f} MiB/s; "
                f"manifest {rate:.0f} req/s")


PAGE_REPOSITORIES = 10_000
PAGE_REQUESTS = 100


def seed_page_catalog(storage, repositories):
    """A catalog with `repositories` repositories, a tag each, naming one stored manifest (the
    schema is the one a first start of Archway made)."""
    import sqlite3
    manifest = b'{"schemaVersion":2}'
    hexdigest = hashlib.sha256(manifest).hexdigest()
    folder = os.path.join(storage, "blobs", "sha256", hexdigest[:2])
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, hexdigest), "wb") as f:
        f.write(manifest)
    now = time.time()
    database = sqlite3.connect(os.path.join(storage, "catalog.sqlite"))
    with database:
        database.execute("INSERT OR IGNORE INTO content (digest, kind, media_type, size, stored_at, last_access) "
                         "VALUES (?, 'manifest', 'application/vnd.oci.image.manifest.v1+json', ?, ?, ?)",
                         (f"sha256:{hexdigest}", len(manifest), now, now))
        database.executemany(
            "INSERT OR IGNORE INTO tag (upstream, repository, tag, accept, rule, digest, validated_at) VALUES (?, ?, ?, '', '', ?, ?)",
            [(UPSTREAM_NAME, f"team/app-{n:05d}", "1.0", f"sha256:{hexdigest}", now - n) for n in range(repositories)])
    database.close()


def bench_page(bench):
    """11. The operator's page with 10 000 cached repositories: Archway's CPU per page, and per
    images JSON, over 100 sequential requests each, each for another page (its own instance, its
    catalog seeded)."""
    storage = os.path.join(bench.work, "archway-page-cache")
    port = free_port()
    config = os.path.join(bench.work, "archway-page.yaml")
    with open(config, "w") as f:
        f.write(f"listen: 127.0.0.1:{port}\nstorage:\n  path: {storage}\n"
                f"upstreams:\n  - name: {UPSTREAM_NAME}\n    url: {bench.upstream.url}\ndefault-upstream: {UPSTREAM_NAME}\n")
    url = f"http://127.0.0.1:{port}"
    argv = [bench.args.archway, "serve", "--config", config, "--log-level", "warning", "--log-format", "json"]
    first = bench.supervisor.start_server("archway-page-setup", argv)
    wait_http(f"{url}/v2/", first)
    first.send_signal(signal.SIGTERM)
    first.wait(timeout=60)
    seed_page_catalog(storage, PAGE_REPOSITORIES)
    process = bench.supervisor.start_server("archway-page", argv)
    wait_http(f"{url}/v2/", process)
    first_page = http_get(url + "/_archway/")
    if f"({PAGE_REPOSITORIES})" not in first_page:
        raise RuntimeError("the page does not show the seeded repositories")
    for run in range(bench.args.runs):
        # A different page each time: Archway keeps a page's answer for 2 s, and each request
        # here must pay for the catalog query over every tag.
        for key, path in (("page_cpu", "/_archway/?page="), ("page_api_cpu", "/_archway/api/images?page=")):
            http_get(url + path + "1")
            before = cpu_seconds([process.pid])[process.pid]
            for n in range(PAGE_REQUESTS):
                http_get(url + path + str(2 + (run * PAGE_REQUESTS + n) % 198))
            per_request = (cpu_seconds([process.pid])[process.pid] - before) / PAGE_REQUESTS * 1000
            bench.results.add(key, ARCHWAY, per_request)
            bench.results.detail("page", {"run": run, "path": path, "cpu_ms": per_request})
            log(f"  page {path}: {per_request:.1f} ms of server CPU per request")


SECTIONS = {
    "warm-blob": (Bench.warm_blob, PEERS),
    "cold-blob": (Bench.cold_blob, PROXIES),
    "manifests": (Bench.manifests, PROXIES),
    "synth": (Bench.synth, [ARCHWAY]),
    "pull": (Bench.pull, PROXIES),
    "memory": (Bench.memory, PROXIES),
    "fills": (Bench.fills, [ARCHWAY]),
    "auth-flood": (Bench.auth_flood, [ARCHWAY]),
    "scan": (bench_scan, [ARCHWAY]),
    "page": (bench_page, [ARCHWAY]),
    "tls": (bench_tls, []),
    "proxy": (bench_proxy, []),
}


# ---------------------------------------------------------------- setup


def seed_upstream(upstream, work, need_huge):
    """The 256 MiB and 1 GiB blobs (streamed from files) and the two per-architecture images."""
    seeds = {}
    warm_file = os.path.join(work, "warm-blob.bin")
    seeds["warm_digest"] = upstream.api.push_random_blob("bench/blob", warm_file, WARM_BLOB_SIZE)
    seeds["warm_file"] = warm_file
    seeds["warm_path"] = f"/v2/bench/blob/blobs/{seeds['warm_digest']}"
    if need_huge:
        huge_file = os.path.join(work, "huge-blob.bin")
        seeds["huge_digest"] = upstream.api.push_random_blob("bench/huge", huge_file, HUGE_BLOB_SIZE)
        os.remove(huge_file)
    seeds["amd64_digest"] = upstream.api.push_image(APP_REPO, "amd64-1.0", "amd64").manifest
    seeds["arm64_digest"] = upstream.api.push_image(APP_REPO, "arm64-1.0", "arm64").manifest
    return seeds


def start_peers(names, supervisor, work, binary, upstream, seeds):
    starters = {
        ARCHWAY: lambda: start_archway(supervisor, work, binary, upstream),
        DISTRIBUTION: lambda: start_distribution_proxy(supervisor, work, upstream),
        NGINX_CACHE: lambda: start_nginx_cache(supervisor, work, upstream),
        NGINX_STATIC: lambda: start_nginx_static(supervisor, work, seeds["warm_file"], seeds["warm_path"]),
    }
    return {name: starters[name]() for name in PEERS if name in names}


# ---------------------------------------------------------------- report


def fmt(value):
    if value is None:
        return "-"
    if float(value).is_integer():
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 0.1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def fmt_ratio(value):
    return "-" if value is None else f"{fmt(value)}x"


def table(results):
    reported = [p for p in REPORTED if any(p in m.samples for m in results.metrics.values())]
    others = [p for p in reported if p != ARCHWAY]
    header = ["metric", "unit", "better", *reported, *(f"A/{p}" for p in others)]
    rows = []
    for metric in results.metrics.values():
        if not metric.samples:
            continue
        medians, ratios = metric.medians(), metric.ratios()
        rows.append([metric.label, metric.unit, metric.better, *(fmt(medians.get(p)) for p in reported),
                     *(fmt_ratio(ratios.get(p)) for p in others)])
    widths = [max(len(str(row[i])) for row in [header] + rows) for i in range(len(header))]
    lines = []
    for n, row in enumerate([header] + rows):
        cells = [str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def synth_ratio(results):
    synth, plain = results.median("synth_rps", ARCHWAY), results.median("manifest_tag_rps", ARCHWAY)
    return (synth / plain) if synth and plain else None


def targets(results):
    """[(PASS/MISS/n/a, text)] for the issue's targets."""
    m = results.median
    checks = []

    def check(ok, text):
        checks.append(("n/a" if ok is None else "PASS" if ok else "MISS", text))

    a, s, d = m("warm_blob_cpu", ARCHWAY), m("warm_blob_cpu", NGINX_STATIC), m("warm_blob_cpu", DISTRIBUTION)
    check(None if a is None or s is None else a - s <= 0.05,
          f"warm blob CPU within 0.05 s/GiB of nginx static (archway {fmt(a)}, nginx-static {fmt(s)} s/GiB)")
    check(None if a is None or d is None else a * 3 <= d,
          f"warm blob CPU >=3x better than distribution (archway {fmt(a)}, distribution {fmt(d)} s/GiB)")
    fetches = results.metrics["cold_fetches"].samples.get(ARCHWAY)
    check(None if not fetches else all(f == 1 for f in fetches),
          f"cold blob: exactly 1 upstream fetch (archway, per run: {fetches})")
    spread = m("cold_ttfb_spread", ARCHWAY)
    check(None if spread is None else spread <= 2,
          f"cold blob: slowest TTFB <= 2x first TTFB (archway {fmt(m('cold_ttfb_first', ARCHWAY))} s -> "
          f"{fmt(m('cold_ttfb_slowest', ARCHWAY))} s, {fmt_ratio(spread)})")
    ratios = results.metrics["manifest_tag_rps"].ratios() if results.metrics["manifest_tag_rps"].samples else {}
    rd, rn = ratios.get(DISTRIBUTION), ratios.get(NGINX_CACHE)
    check(None if rd is None else rd >= 50, f"warm tag manifests >= 50x distribution ({fmt_ratio(rd)})")
    check(None if rn is None else rn >= 0.5, f"warm tag manifests >= 0.5x nginx cache ({fmt_ratio(rn)})")
    peak = m("peak_rss", ARCHWAY)
    check(None if peak is None else peak < 150, f"peak memory < 150 MiB (archway {fmt(peak)} MiB)")
    quiet_fill, loaded_fill = m("fill_quiet_p99", ARCHWAY), m("fill_loaded_p99", ARCHWAY)
    check(None if quiet_fill is None or loaded_fill is None else loaded_fill <= 2 * quiet_fill,
          f"manifest p99 during 8 cold fills <= 2x quiet ({fmt(loaded_fill)} ms against {fmt(quiet_fill)} ms)")
    scan, tar = m("scan_cpu", ARCHWAY), m("scan_tar_cpu", ARCHWAY)
    check(None if scan is None or tar is None else scan <= 1.5 * tar,
          f"binary scan CPU <= 1.5x tar -tzf on the same layer (archway {fmt(scan)}, tar {fmt(tar)} s/GiB)")
    for label, name in (("h1", "HTTP/1.1"), ("h2", "HTTP/2")):
        a, n = m(f"tls_blob_{label}_cpu", ARCHWAY), m(f"tls_blob_{label}_cpu", NGINX_STATIC)
        check(None if a is None or n is None else a <= n,
              f"warm blob CPU over TLS {name} <= nginx static's (archway {fmt(a)}, nginx {fmt(n)} s/GiB)")
    a, n = m("tls_blob_h2_rate", ARCHWAY), m("tls_blob_h2_rate", NGINX_STATIC)
    check(None if a is None or n is None else a >= n, f"warm blob MiB/s over HTTP/2 >= nginx's (archway {fmt(a)}, nginx {fmt(n)})")
    for key, name in (("tls_manifest_tag_h1_rps", "TLS HTTP/1.1"), ("tls_manifest_tag_h2_rps", "HTTP/2")):
        a, n = m(key, ARCHWAY), m(key, NGINX_CACHE)
        check(None if a is None or n is None else a >= n,
              f"warm manifests by tag over {name} >= 1.0x nginx proxy_cache ({fmt_ratio(a / n if a and n else None)})")
    page = m("page_cpu", ARCHWAY)
    check(None if page is None else page < 50,
          f"operator page with 10 000 repositories < 50 ms of server CPU (archway {fmt(page)} ms)")
    quiet, flood = m("auth_quiet_p99", ARCHWAY), m("auth_flood_p99", ARCHWAY)
    check(None if quiet is None or flood is None else flood <= 10 * quiet,
          f"manifest p99 under 50 wrong-password connections <= 10x quiet "
          f"({fmt(flood)} ms against {fmt(quiet)} ms: {fmt_ratio(flood / quiet) if quiet and flood else '-'})")
    return checks


def plot(results, png, work):
    """A bar chart of Archway/peer ratios (log scale, bars from 1), one group per metric."""
    others = [p for p in REPORTED if p != ARCHWAY]
    rows = []
    for metric in results.metrics.values():
        ratios = metric.ratios()
        if metric.key == "synth_rps":
            ratios = {"synth/plain": synth_ratio(results)}
        if any(v for v in ratios.values()):
            rows.append((f"{metric.label} ({metric.better} is better)", ratios))
    if not rows:
        return False
    series = [p for p in others + ["synth/plain"] if any(r.get(p) for _, r in rows)]
    data = os.path.join(work, "ratios.dat")
    with open(data, "w") as f:
        for i, (_, ratios) in enumerate(rows):
            f.write(f"{i} " + " ".join(f"{ratios[p]:.6g}" if ratios.get(p) else "?" for p in series) + "\n")
    values = [v for _, r in rows for v in r.values() if v]
    low, high = min(values + [1.0]) / 2, max(values + [1.0]) * 2
    width = 0.8 / len(series)
    plots = []
    for n, name in enumerate(series):
        x = f"($1{(n - (len(series) - 1) / 2) * width:+.3f})"
        title = "synthesized tag / Archway plain tag" if name == "synth/plain" else f"Archway / {name}"
        plots.append(f"'{data}' using {x}:{n + 2}:({x}-{width / 2:.3f}):({x}+{width / 2:.3f}):(1):{n + 2} "
                     f"with boxxyerror title '{title}'")
    xtics = ", ".join(f'"{label}" {i}' for i, (label, _) in enumerate(rows))
    script = "\n".join([
        "set terminal pngcairo size 1500,800 font 'sans,10'",
        f"set output '{png}'",
        "set title 'Archway / peer, median of the runs (bars start at 1; see each metric for which side is better)'",
        "set logscale y", f"set yrange [{low:.3g}:{high:.3g}]", "set grid ytics",
        "set datafile missing '?'", "set style fill solid 0.85 border -1", "set key top right",
        f"set xtics ({xtics}) rotate by 30 right", "set bmargin 14", "set lmargin 30",
        f"set xrange [-0.6:{len(rows) - 0.4}]", "set ylabel 'ratio (log scale)'",
        "plot " + ", \\\n  ".join(plots) + ", \\\n  1 with lines dt 2 lc rgb 'black' notitle",
    ])
    path = os.path.join(work, "ratios.gp")
    with open(path, "w") as f:
        f.write(script + "\n")
    result = subprocess.run(["gnuplot", path], capture_output=True, text=True)
    if result.returncode != 0:
        log(f"gnuplot failed: {result.stderr.strip()}")
        return False
    return True


def archway_warnings(work):
    """Archway's log lines at warning or above (it runs with --log-level warning)."""
    path = os.path.join(work, "archway.log")
    if not os.path.exists(path):
        return []
    with open(path, errors="replace") as f:
        return [line.strip() for line in f if line.strip()]


def git_commit():
    result = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return result.stdout.strip() or None


def binary_fingerprint(path):
    """Path, modification time and sha256 of the binary: the commit alone does not say what was built."""
    mtime = datetime.datetime.fromtimestamp(os.path.getmtime(path), datetime.timezone.utc)
    return {"path": os.path.abspath(path), "mtime": mtime.isoformat(timespec="seconds"), "sha256": file_sha256(path)}


def write_outputs(args, results, checks, work, started, durations, warnings):
    os.makedirs(args.out, exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    report = {
        "timestamp": started.isoformat(),
        "git_commit": git_commit(),
        "nproc": os.cpu_count(),
        "loadavg_at_start_and_end": [args.loadavg_start, os.getloadavg()],
        "archway_binary": binary_fingerprint(args.archway),
        "options": {"runs": args.runs, "wrk_seconds": args.wrk_seconds, "sections": args.only},
        "section_seconds": durations,
        "metrics": {m.key: {"label": m.label, "unit": m.unit, "better": m.better, "samples": m.samples,
                            "median": m.medians(), "ratio_archway_over_peer": m.ratios()}
                    for m in results.metrics.values() if m.samples},
        "synth_over_plain_tag": synth_ratio(results),
        "targets": [{"result": r, "target": t} for r, t in checks],
        "raw": results.raw,
        "archway_log": warnings[:200],
    }
    path = os.path.join(args.out, f"bench-{stamp}.json")
    for target in (path, os.path.join(args.out, "latest.json")):
        with open(target, "w") as f:
            json.dump(report, f, indent=2)
    png = os.path.join(args.out, f"bench-{stamp}.png")
    if plot(results, png, work):
        shutil.copyfile(png, os.path.join(args.out, "latest.png"))
        return path, png
    return path, None


# ---------------------------------------------------------------- main


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--archway", default=os.path.join(ROOT, ".build/release/archway"), help="the archway binary")
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement; the median is reported")
    parser.add_argument("--wrk-seconds", type=int, default=8, help="duration of each wrk run")
    parser.add_argument("--quick", action="store_true", help="1 run and 2-second wrk runs, for development")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"sections, comma-separated: {','.join(SECTIONS)}")
    parser.add_argument("--out", default=os.path.join(ROOT, ".build/bench"), help="folder for the JSON and PNG")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.wrk_seconds = 1, 2
    chosen = {s.strip() for s in args.only.split(",") if s.strip()}
    if chosen - set(SECTIONS):
        parser.error(f"unknown section(s) {sorted(chosen - set(SECTIONS))}; known: {', '.join(SECTIONS)}")
    args.only = [name for name in SECTIONS if name in chosen]    # always in the canonical order
    if not os.access(args.archway, os.X_OK):
        parser.error(f"{args.archway} is not an executable (build it: swift build -c release --product archway)")
    for tool in ("docker-registry", "curl", "wrk", "skopeo", "gnuplot", "sha256sum", NGINX):
        if not shutil.which(tool):
            parser.error(f"{tool} is missing")
    return args


def raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def main():
    args = parse_args()
    args.loadavg_start = os.getloadavg()     # others' work on the machine skews every number: noted in the JSON
    for signum in (signal.SIGINT, signal.SIGTERM):     # SIGINT too: a background job may have it ignored
        signal.signal(signum, raise_keyboard_interrupt)
    started = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    t0 = time.monotonic()
    work = tempfile.mkdtemp(prefix="archway-bench-")
    supervisor = Supervisor(work)
    try:
        needed = {peer for name in args.only for peer in SECTIONS[name][1]}
        log(f"upstream and seed content in {work}")
        upstream = Upstream(supervisor, work)
        seeds = seed_upstream(upstream, work, need_huge="memory" in args.only)
        log(f"starting peers: {', '.join(p for p in PEERS if p in needed)}")
        peers = start_peers(needed, supervisor, work, args.archway, upstream, seeds)
        bench = Bench(args, supervisor, work, upstream, peers, seeds)
        durations = {"setup": round(time.monotonic() - t0, 1)}
        for name in args.only:
            log(f"section {name}")
            start = time.monotonic()
            SECTIONS[name][0](bench)
            durations[name] = round(time.monotonic() - start, 1)
        dead = [p.name for p in peers.values() if not p.alive()]
        if dead:
            raise RuntimeError(f"peer(s) exited during the run: {dead}")
        results = bench.results
        checks = targets(results)
        warnings = archway_warnings(work)
        json_path, png_path = write_outputs(args, results, checks, work, started, durations, warnings)
        print_report(args, results, checks, durations, time.monotonic() - t0, warnings, json_path, png_path)
        return 0
    except KeyboardInterrupt:
        log("interrupted; stopping everything")
        return 130
    finally:
        supervisor.stop_all()
        shutil.rmtree(work, ignore_errors=True)


def print_report(args, results, checks, durations, elapsed, warnings, json_path, png_path):
    print(f"Archway benchmark: median of {args.runs} run(s), {os.cpu_count()} cores, loopback; "
          f"commit {git_commit()}; A/peer = Archway's median / the peer's")
    print()
    print(table(results))
    ratio = synth_ratio(results)
    if ratio is not None:
        print(f"\nsynthesized index by tag: {fmt(results.median('synth_rps', ARCHWAY))} req/s = {fmt_ratio(ratio)} "
              f"Archway's plain tag rate ({fmt(results.median('manifest_tag_rps', ARCHWAY))} req/s)")
    single, nginx = results.median("manifest_tag_1loop_rps", ARCHWAY), results.median("manifest_tag_rps", NGINX_CACHE)
    if single is not None and nginx:
        print(f"manifest by tag on 1 event loop: {fmt(single)} req/s, p99 "
              f"{fmt(results.median('manifest_tag_1loop_p99', ARCHWAY))} ms = {fmt_ratio(single / nginx)} nginx's cache on its "
              f"1 worker ({fmt(nginx)} req/s, p99 {fmt(results.median('manifest_tag_p99', NGINX_CACHE))} ms)")
    print("\ntargets:")
    for result, text in checks:
        print(f"  {result:4}  {text}")
    print(f"\narchway log (warning and above): {len(warnings)} line(s)")
    for line in warnings[:5]:
        print(f"  {line[:200]}")
    print(f"\nsections: {', '.join(f'{k} {v} s' for k, v in durations.items())}; total {elapsed:.0f} s")
    print(f"wrote {json_path}" + (f" and {png_path}" if png_path else ""))


if __name__ == "__main__":
    sys.exit(main())
