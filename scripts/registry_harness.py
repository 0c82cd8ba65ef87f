"""What the benchmark and the soak test share: free loopback ports, waiting for a server, and the
few distribution API calls that seed an upstream registry (blob uploads, manifest puts)."""

import hashlib
import http.client
import json
import os
import socket
import time
import urllib.parse
from dataclasses import dataclass

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
LAYER_SIZE = 4 * MiB
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


@dataclass
class PushedImage:
    manifest: str       # digests
    config: str
    layers: list


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, process=None, seconds=30):
    """Waits until something answers HTTP at url (any status); fails early if process exits."""
    parts = urllib.parse.urlsplit(url)
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited ({process.returncode}) before answering at {url}; "
                               f"its log ends:\n{log_tail(getattr(process, 'log_path', None))}")
        try:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=2)
            conn.request("GET", parts.path or "/")
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {seconds} s")


def log_tail(path, lines=15):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except (OSError, TypeError):
        return "(no log)"


def random_file(path, size):
    """Writes size random bytes to path in 8 MiB pieces; returns the sha256 digest."""
    sha = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            piece = os.urandom(min(8 * MiB, left))
            sha.update(piece)
            f.write(piece)
            left -= len(piece)
    return "sha256:" + sha.hexdigest()


class RegistryAPI:
    """The few distribution API calls needed to seed the upstream: blob uploads and manifest puts."""

    def __init__(self, base):
        self.base = base
        parts = urllib.parse.urlsplit(base)
        self.host, self.port = parts.hostname, parts.port

    def call(self, method, target, body=None, headers=None, expect=(200, 201, 202, 204)):
        if target.startswith("http"):
            parts = urllib.parse.urlsplit(target)
            target = parts.path + ("?" + parts.query if parts.query else "")
        conn = http.client.HTTPConnection(self.host, self.port, timeout=300)
        try:
            conn.request(method, target, body=body, headers=headers or {})
            response = conn.getresponse()
            data = response.read()
            if response.status not in expect:
                raise RuntimeError(f"{method} {target}: {response.status} {data[:300]!r}")
            return response.status, response.headers, data
        finally:
            conn.close()

    def start_upload(self, repo):
        _, headers, _ = self.call("POST", f"/v2/{repo}/blobs/uploads/")
        return headers["Location"]

    @staticmethod
    def with_digest(location, digest):
        return f"{location}{'&' if '?' in location else '?'}digest={digest}"

    def push_bytes(self, repo, data):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        location = self.start_upload(repo)
        self.call("PUT", self.with_digest(location, digest), body=data,
                  headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(data))})
        return digest

    def push_file(self, repo, path, digest, chunk=32 * MiB):
        """Chunked upload: one PATCH per chunk read from the file, then the closing PUT."""
        location = self.start_upload(repo)
        offset = 0
        with open(path, "rb") as f:
            while piece := f.read(chunk):
                _, headers, _ = self.call("PATCH", location, body=piece, headers={
                    "Content-Type": "application/octet-stream", "Content-Length": str(len(piece)),
                    "Content-Range": f"{offset}-{offset + len(piece) - 1}"})
                location = headers["Location"]
                offset += len(piece)
        self.call("PUT", self.with_digest(location, digest), headers={"Content-Length": "0"})

    def push_manifest(self, repo, tag, manifest, media_type):
        self.call("PUT", f"/v2/{repo}/manifests/{tag}", body=manifest, headers={"Content-Type": media_type})
        return "sha256:" + hashlib.sha256(manifest).hexdigest()

    def push_image(self, repo, tag, arch, layers=3, layer_size=LAYER_SIZE):
        """A single-architecture OCI image of random layers."""
        descriptors = []
        for _ in range(layers):
            data = os.urandom(layer_size)
            descriptors.append({"mediaType": OCI_LAYER, "digest": self.push_bytes(repo, data), "size": len(data)})
        config = json.dumps({"architecture": arch, "os": "linux",
                             "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in descriptors]}}).encode()
        config_digest = self.push_bytes(repo, config)
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": descriptors,
        }, separators=(",", ":")).encode()
        return PushedImage(self.push_manifest(repo, tag, manifest, OCI_MANIFEST), config_digest,
                           [d["digest"] for d in descriptors])

    def push_random_blob(self, repo, path, size):
        """A fresh random blob of size bytes, staged in path (deleted after the push unless kept)."""
        digest = random_file(path, size)
        self.push_file(repo, path, digest)
        return digest
