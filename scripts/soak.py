#!/usr/bin/env python3
"""Soak test: many concurrent clients against a release Archway for a bounded time.

Starts a docker-registry upstream (loopback, its own folder) seeded with images, and the release
archway binary in front of it. For --seconds, `wrk` keeps --clients connections busy on cached
manifests (by tag and by digest) and blobs, while pullers fetch images that are not cached yet
(pushed during the run), manifest, config and layers, checking every digest. Samples Archway's
resident memory and open file descriptors every 5 seconds. Prints a Markdown report; exits 1 on
any error. Everything it starts it stops, by pid."""

import argparse, hashlib, os, re, shutil, signal, subprocess, sys, tempfile, threading, time
import urllib.request

from registry_harness import RegistryAPI, free_port, wait_http

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def request(method, url, headers=None):
    req = urllib.request.Request(url, method=method, headers=headers or {})
    with urllib.request.urlopen(req, timeout=60) as response:
        return response.status, dict(response.headers), response.read()


def proc_status(pid):
    rss = hwm = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) * 1024
    return rss, hwm, len(os.listdir(f"/proc/{pid}/fd"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=300)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build/release/archway"))
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="archway-soak-")
    processes = []
    try:
        reg_port, arch_port = free_port(), free_port()
        with open(f"{work}/registry.yml", "w") as f:
            f.write(f"version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {work}/registry\n"
                    f"http:\n  addr: 127.0.0.1:{reg_port}\n  secret: soak\n")
        processes.append(subprocess.Popen(["docker-registry", "serve", f"{work}/registry.yml"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        registry = f"http://127.0.0.1:{reg_port}"
        wait_http(f"{registry}/v2/")
        api = RegistryAPI(registry)
        cached = [api.push_image(f"soak/cached{i}", "1", "amd64", layers=1, layer_size=256 * 1024) for i in range(8)]
        with open(f"{work}/archway.yaml", "w") as f:
            f.write(f"listen: 127.0.0.1:{arch_port}\nstorage:\n  path: {work}/cache\nupstreams:\n  - name: soak.test\n    url: {registry}\n"
                    "default-upstream: soak.test\ntag-ttl: 30s\n")
        archway_log = open(f"{work}/archway.log", "w")
        archway = subprocess.Popen([args.binary, "serve", "--config", f"{work}/archway.yaml", "--log-level", "warning", "--log-format", "json"],
                                   stdout=archway_log, stderr=archway_log)
        processes.append(archway)
        base = f"http://127.0.0.1:{arch_port}"
        wait_http(f"{base}/v2/")
        # Warm: every cached image once.
        paths = []
        for i, image in enumerate(cached):
            repo = f"soak/cached{i}"
            for path in (f"/v2/{repo}/manifests/1", f"/v2/{repo}/manifests/{image.manifest}", f"/v2/{repo}/blobs/{image.config}",
                         f"/v2/{repo}/blobs/{image.layers[0]}"):
                request("GET", base + path, headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
                paths.append(path)
        rss0, _, fds0 = proc_status(archway.pid)
        with open(f"{work}/paths.lua", "w") as f:
            f.write("paths = {" + ",".join(f'"{p}"' for p in paths) + "}\n")
            f.write('request = function()\n  return wrk.format("GET", paths[math.random(#paths)], {["Accept"] = "application/vnd.oci.image.manifest.v1+json"})\nend\n')

        samples, errors, pulls = [], [], [0]
        stop = threading.Event()

        def sampler():
            while not stop.wait(5):
                samples.append((time.time(),) + proc_status(archway.pid))

        def puller(worker):
            n = 0
            while not stop.is_set():
                n += 1
                repo = f"soak/fresh{worker}-{n}"
                try:
                    image = api.push_image(repo, "1", "arm64", layers=1, layer_size=512 * 1024)
                    for ref, want in ((f"/v2/{repo}/manifests/1", image.manifest), (f"/v2/{repo}/blobs/{image.config}", image.config),
                                      (f"/v2/{repo}/blobs/{image.layers[0]}", image.layers[0])):
                        status, _, body = request("GET", base + ref, headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
                        if status != 200 or "sha256:" + hashlib.sha256(body).hexdigest() != want:
                            errors.append(f"{ref}: status {status}, wrong bytes")
                    pulls[0] += 1
                except Exception as error:  # noqa: BLE001 - every failure counts
                    errors.append(f"{repo}: {error}")

        threads = [threading.Thread(target=sampler)] + [threading.Thread(target=puller, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        wrk = subprocess.run(["wrk", "-t2", f"-c{args.clients}", f"-d{args.seconds}s", "--latency", "-s", f"{work}/paths.lua", base],
                             capture_output=True, text=True)
        stop.set()
        for t in threads:
            t.join()
        time.sleep(1)
        rss1, hwm, fds1 = proc_status(archway.pid)
        out = wrk.stdout
        requests = int(re.search(r"(\d+) requests in", out).group(1))
        non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
        socket_errors = re.search(r"Socket errors: (.*)", out)
        p99 = re.search(r"99%\s+(\S+)", out).group(1)
        rate = re.search(r"Requests/sec:\s+(\S+)", out).group(1)
        warm = [s for s in samples if s[0] - samples[0][0] >= args.seconds * 0.25] if samples else []
        rss_warm = (min(s[1] for s in warm), max(s[1] for s in warm)) if warm else (rss1, rss1)
        report = [
            f"| clients | {args.clients} wrk connections + 4 pullers of uncached images |",
            "|---|---|",
            f"| duration | {args.seconds} s |",
            f"| requests (wrk) | {requests} ({rate}/s, p99 {p99}) |",
            f"| uncached image pulls, digests checked | {pulls[0]} |",
            f"| errors | {non2xx + len(errors)} (non-2xx {non2xx}, pull errors {len(errors)}, socket: {socket_errors.group(1) if socket_errors else 'none'}) |",
            f"| resident memory | {rss0 >> 20} MiB after warm-up, {rss_warm[0] >> 20}-{rss_warm[1] >> 20} MiB from 25% of the run on, peak {hwm >> 20} MiB |",
            f"| open file descriptors | {fds0} before, {fds1} after |",
        ]
        print("\n".join(report))
        for e in errors[:10]:
            print("error:", e, file=sys.stderr)
        failed = non2xx + len(errors) > 0 or socket_errors is not None or archway.poll() is not None
        return 1 if failed else 0
    finally:
        for p in processes:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
