#!/usr/bin/env python3
"""Hostile clients for Archway's tests and benchmark, each bounded in count and time, loopback only.

  wrong-passwords URL --connections N --seconds S [--interval I]
                                                      keep-alive connections sending new wrong passwords
  idle HOST PORT --connections N --seconds S [--nonblocking]
                                                      connections that never send a byte
  burst HOST PORT --connections N --wait S            N connections opened at once; how many complete their handshake
                                                      within S seconds (the rest: SYNs the server's kernel dropped)
  window-update-flood HOST PORT --seconds S           HTTP/2 over TLS: WINDOW_UPDATE increment 1, as fast as possible
  zero-window HOST PORT PATH --connections N --streams M --seconds S [--after-settings] [--accept TYPE]
                                                      HTTP/2 over TLS: streams whose flow-control window stays 0
  odd-streams HOST PORT PATH [--accept TYPE]          HTTP/2 over TLS: late frames for an answered stream, streams ended by DATA or trailers
  silent-settings HOST PORT --seconds S               HTTP/2 over TLS: never acknowledges the server's SETTINGS
  proxy-head HOST PORT HEX [--seconds S]              sends these bytes to a proxy listener, reports its answer
  proxy-tunnel HOST PORT TARGET --bytes N             CONNECT TARGET, then N random bytes (some sent with the head)
                                                      that an echo server behind the tunnel must return unchanged

Each prints one JSON object with what it saw. Standard library only.
"""
import argparse
import base64
import http.client
import json
import random
import select
import selectors
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def require_loopback(host):
    if host not in LOOPBACK and not host.startswith("127."):
        sys.exit(f"refusing to target {host}: loopback only")


def wrong_passwords(args):
    url = urllib.parse.urlsplit(args.url)
    require_loopback(url.hostname)
    deadline = time.monotonic() + args.seconds
    statuses, lock = {}, threading.Lock()

    def attacker(number):
        connection = None
        attempt = 0
        while time.monotonic() < deadline:
            attempt += 1
            secret = base64.b64encode(f"{args.user}:guess-{number}-{attempt}-{random.random()}".encode()).decode()
            try:
                if connection is None:
                    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
                connection.request("GET", url.path, headers={"Authorization": f"Basic {secret}"})
                response = connection.getresponse()
                response.read()
                status = response.status
                if response.getheader("Connection", "").lower() == "close":
                    connection.close()
                    connection = None
            except (OSError, http.client.HTTPException):
                status = 0
                connection = None
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
            if args.interval:
                time.sleep(args.interval)
        if connection is not None:
            connection.close()

    threads = [threading.Thread(target=attacker, args=(n,)) for n in range(args.connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps({"statuses": {str(k): v for k, v in statuses.items()}}))


def idle(args):
    require_loopback(args.host)
    sockets, refused = [], 0
    started = time.monotonic()
    for _ in range(args.connections):
        try:
            if args.nonblocking:
                # Do not wait for the server to accept: a server out of descriptors leaves them queued.
                connection = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                connection.setblocking(False)
                connection.connect_ex((args.host, args.port))
            else:
                connection = socket.create_connection((args.host, args.port), timeout=5)
                connection.setblocking(False)
            sockets.append(connection)
        except OSError:
            refused += 1
    print(json.dumps({"event": "opened", "opened": len(sockets), "refused": refused,
                      "seconds": round(time.monotonic() - started, 1)}), flush=True)
    deadline = time.monotonic() + args.seconds
    watcher = selectors.DefaultSelector()  # epoll: select() stops at descriptor 1024
    for connection in sockets:
        watcher.register(connection, selectors.EVENT_READ)
    closed = 0
    while time.monotonic() < deadline and closed < len(sockets):
        for key, _ in watcher.select(timeout=0.5):
            try:
                data = key.fileobj.recv(4096)
            except OSError:
                data = b""
            if data == b"":
                watcher.unregister(key.fileobj)
                closed += 1
    for connection in sockets:
        connection.close()
    print(json.dumps({"event": "done", "opened": len(sockets), "refused": refused, "closed_by_server": closed}), flush=True)


def burst(args):
    require_loopback(args.host)
    pending, established, failed = {}, 0, 0
    watcher = selectors.DefaultSelector()
    for _ in range(args.connections):
        connection = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        connection.setblocking(False)
        connection.connect_ex((args.host, args.port))
        pending[connection.fileno()] = connection
        watcher.register(connection, selectors.EVENT_WRITE)
    deadline = time.monotonic() + args.wait
    while pending and time.monotonic() < deadline:
        for key, _ in watcher.select(timeout=max(0, deadline - time.monotonic())):
            connection = pending.pop(key.fd)
            watcher.unregister(connection)
            if connection.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                established += 1
            else:
                failed += 1
            connection.close()
    for connection in pending.values():
        connection.close()
    print(json.dumps({"established": established, "failed": failed, "pending": len(pending)}), flush=True)


# --- HTTP/2 by hand: just the frames these attacks need -------------------------------------

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = 0, 1, 3, 4, 6, 7, 8


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream & 0x7FFFFFFF) + payload


def hpack_integer(value, prefix_bits, first_byte=0):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first_byte | value])
    out = [first_byte | limit]
    value -= limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def hpack_literal(name, value):
    """Literal header field without indexing, new name, no Huffman."""
    name, value = name.encode(), value.encode()
    return b"\x00" + hpack_integer(len(name), 7) + name + hpack_integer(len(value), 7) + value


def tls_h2(host, port):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    raw = socket.create_connection((host, port), timeout=10)
    connection = context.wrap_socket(raw, server_hostname=host)
    if connection.selected_alpn_protocol() != "h2":
        raise SystemExit("the server did not choose h2")
    return connection


class FrameReader:
    def __init__(self, connection):
        self.connection = connection
        self.buffer = b""

    def frames(self):
        """Frames available without blocking long; raises EOFError after the last one once the
        server closed."""
        ended = False
        readable, _, _ = select.select([self.connection], [], [], 0)
        while readable or self.connection.pending():
            chunk = self.connection.recv(65536)
            if not chunk:
                ended = True
                break
            self.buffer += chunk
            readable, _, _ = select.select([self.connection], [], [], 0)
        yield from self.parse()
        if ended:
            raise EOFError

    def parse(self):
        while len(self.buffer) >= 9:
            length = int.from_bytes(self.buffer[:3], "big")
            if len(self.buffer) < 9 + length:
                break
            kind, flags = self.buffer[3], self.buffer[4]
            stream = int.from_bytes(self.buffer[5:9], "big") & 0x7FFFFFFF
            payload = self.buffer[9:9 + length]
            self.buffer = self.buffer[9 + length:]
            yield kind, flags, stream, payload


def window_update_flood(args):
    require_loopback(args.host)
    connection = tls_h2(args.host, args.port)
    connection.sendall(PREFACE + frame(SETTINGS, 0, 0))
    reader = FrameReader(connection)
    burst = frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1)) * 256
    sent, goaway, closed = 0, None, False
    deadline = time.monotonic() + args.seconds
    connection.setblocking(True)
    try:
        while time.monotonic() < deadline and goaway is None:
            try:
                connection.sendall(burst)
                sent += 256
            except OSError:
                closed = True
            try:
                for kind, flags, stream, payload in reader.frames():
                    if kind == SETTINGS and not flags & 1:
                        connection.sendall(frame(SETTINGS, 1, 0))
                    elif kind == GOAWAY:
                        goaway = int.from_bytes(payload[4:8], "big")
            except (EOFError, OSError):
                closed = True
            if closed:
                break
    finally:
        connection.close()
    print(json.dumps({"sent": sent, "goaway": goaway, "closed": closed or goaway is not None}))


def silent_settings(args):
    """Never acknowledges the server's SETTINGS: the server must give up (GOAWAY SETTINGS_TIMEOUT)."""
    require_loopback(args.host)
    connection = tls_h2(args.host, args.port)
    connection.sendall(PREFACE + frame(SETTINGS, 0, 0))
    reader = FrameReader(connection)
    started = time.monotonic()
    goaway, closed = None, False
    while time.monotonic() - started < args.seconds and goaway is None and not closed:
        try:
            for kind, flags, stream, payload in reader.frames():
                if kind == GOAWAY:
                    goaway = int.from_bytes(payload[4:8], "big")
        except (EOFError, OSError):
            closed = True
        time.sleep(0.05)
    connection.close()
    print(json.dumps({"goaway": goaway, "closed": closed or goaway is not None, "after_seconds": round(time.monotonic() - started, 1)}))


def await_settings_exchange(connection, reader, deadline):
    """Acknowledges the server's SETTINGS until it has sent them and acknowledged ours."""
    server_settings, acknowledged = 0, False
    while time.monotonic() < deadline and (server_settings < 1 or not acknowledged):
        for kind, flags, stream, payload in reader.frames():
            if kind == SETTINGS and flags & 1:
                acknowledged = True
            elif kind == SETTINGS:
                server_settings += 1
                connection.sendall(frame(SETTINGS, 1, 0))
        time.sleep(0.02)


def zero_window(args):
    require_loopback(args.host)
    deadline = time.monotonic() + args.seconds
    headers = b"".join(
        hpack_literal(name, value)
        for name, value in [(":method", "GET"), (":scheme", "https"), (":authority", f"{args.host}:{args.port}"), (":path", args.path)]
        + ([("accept", args.accept)] if args.accept else [])
    )
    connections = []
    refused = 0
    for _ in range(args.connections):
        try:
            connection = tls_h2(args.host, args.port)
        except (OSError, SystemExit):
            refused += 1
            continue
        # Initial window 0 for every stream: the server may not send a byte of DATA.
        settings = struct.pack(">HI", 0x4, 0)
        streams = b"".join(frame(HEADERS, 0x5, 1 + 2 * n, headers) for n in range(args.streams))
        reader = FrameReader(connection)
        if args.after_settings:
            connection.sendall(PREFACE + frame(SETTINGS, 0, 0, settings))
            await_settings_exchange(connection, reader, time.monotonic() + 5)
            connection.sendall(streams)
        else:
            connection.sendall(PREFACE + frame(SETTINGS, 0, 0, settings) + streams)
        connections.append((connection, reader))
    resets, goaways, closed = 0, 0, 0
    reset_codes, goaway_codes = {}, []
    statuses = {}
    while time.monotonic() < deadline and connections:
        for connection, reader in list(connections):
            try:
                for kind, flags, stream, payload in reader.frames():
                    if kind == SETTINGS and not flags & 1:
                        connection.sendall(frame(SETTINGS, 1, 0))
                    elif kind == RST_STREAM:
                        resets += 1
                        code = str(int.from_bytes(payload[:4], "big"))
                        reset_codes[code] = reset_codes.get(code, 0) + 1
                    elif kind == GOAWAY:
                        goaways += 1
                        goaway_codes.append([int.from_bytes(payload[4:8], "big"), payload[8:].decode(errors="replace")])
                    elif kind == HEADERS and len(payload) > 0:
                        # The first byte of a response HEADERS is usually an indexed :status.
                        code = {0x88: "200", 0x8D: "404", 0x8E: "500"}.get(payload[0], "other")
                        statuses[code] = statuses.get(code, 0) + 1
            except (EOFError, OSError):
                closed += 1
                connections.remove((connection, reader))
        time.sleep(0.1)
    for connection, _ in connections:
        connection.close()
    print(json.dumps({"open_at_end": len(connections), "refused": refused, "closed": closed, "resets": resets,
                      "reset_codes": reset_codes, "goaways": goaways, "goaway_codes": goaway_codes, "statuses": statuses}))


def odd_streams(args):
    """One HTTP/2 connection: a complete GET (stream 1) followed at once by WINDOW_UPDATE and
    RST_STREAM for it; a GET whose HEADERS leave the stream open, ended by an empty DATA frame
    (stream 3); a complete GET again (stream 5); a GET ended by a trailers block (stream 7).
    Reports each stream's status and body length."""
    require_loopback(args.host)
    connection = tls_h2(args.host, args.port)
    reader = FrameReader(connection)
    connection.sendall(PREFACE + frame(SETTINGS, 0, 0))
    await_settings_exchange(connection, reader, time.monotonic() + 5)
    block = b"".join(
        hpack_literal(name, value)
        for name, value in [(":method", "GET"), (":scheme", "https"), (":authority", f"{args.host}:{args.port}"), (":path", args.path),
                            ("accept", args.accept)])
    END_STREAM, END_HEADERS = 0x1, 0x4
    connection.sendall(frame(HEADERS, END_STREAM | END_HEADERS, 1, block)
                       + frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 1024))
                       + frame(RST_STREAM, 0, 1, struct.pack(">I", 8))
                       + frame(HEADERS, END_HEADERS, 3, block)
                       + frame(DATA, END_STREAM, 3)
                       + frame(HEADERS, END_STREAM | END_HEADERS, 5, block)
                       + frame(HEADERS, END_HEADERS, 7, block)
                       + frame(HEADERS, END_STREAM | END_HEADERS, 7, hpack_literal("x-trailer", "1")))
    streams = {n: {"status": None, "bytes": 0, "ended": False} for n in (1, 3, 5, 7)}
    goaways, closed = [], False
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline and not all(streams[n]["ended"] for n in (3, 5, 7)) and not closed:
        try:
            for kind, flags, stream, payload in reader.frames():
                if kind == SETTINGS and not flags & 1:
                    connection.sendall(frame(SETTINGS, 1, 0))
                elif kind == GOAWAY:
                    goaways.append(int.from_bytes(payload[4:8], "big"))
                elif stream in streams and kind == HEADERS:
                    streams[stream]["status"] = {0x88: "200", 0x8D: "404"}.get(payload[0], "other")
                    streams[stream]["ended"] |= bool(flags & END_STREAM)
                elif stream in streams and kind == DATA:
                    streams[stream]["bytes"] += len(payload)
                    streams[stream]["ended"] |= bool(flags & END_STREAM)
                elif stream in streams and kind == RST_STREAM:
                    streams[stream]["reset"] = int.from_bytes(payload[:4], "big")
        except (EOFError, OSError):
            closed = True
        time.sleep(0.02)
    connection.close()
    print(json.dumps({"streams": {str(n): v for n, v in streams.items()}, "goaways": goaways, "closed": closed}))


def read_head(sock, deadline):
    """The response head (status and fields) and whatever came after it."""
    data = b""
    while b"\r\n\r\n" not in data and time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    line = head.split(b"\r\n")[0].decode("latin-1")
    parts = line.split(" ")
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    return status, head.decode("latin-1"), rest


def proxy_head(args):
    require_loopback(args.host)
    sock = socket.create_connection((args.host, args.port), timeout=args.seconds)
    sock.sendall(bytes.fromhex(args.hex))
    deadline = time.monotonic() + args.seconds
    status, head, rest = read_head(sock, deadline)
    body = rest
    closed = False
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, ConnectionResetError):
            break
        if not chunk:
            closed = True
            break
        body += chunk
    print(json.dumps({"status": status, "head": head, "body": body.decode("utf-8", "replace"), "closed": closed}))


def proxy_tunnel(args):
    require_loopback(args.host)
    payload = random.randbytes(args.bytes)
    early = payload[:1000]
    sock = socket.create_connection((args.host, args.port), timeout=30)
    # Some bytes ride with the head, as a client that does not wait for the 200 sends them.
    sock.sendall(f"CONNECT {args.target} HTTP/1.1\r\nHost: {args.target}\r\n\r\n".encode() + early)
    deadline = time.monotonic() + 30
    status, head, echoed = read_head(sock, deadline)
    if status != 200:
        print(json.dumps({"status": status, "head": head, "equal": False, "received": 0}))
        return
    sender = threading.Thread(target=lambda: sock.sendall(payload[len(early):]))
    sender.start()
    while len(echoed) < len(payload) and time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(1 << 20)
        except socket.timeout:
            break
        if not chunk:
            break
        echoed += chunk
    sender.join()
    print(json.dumps({"status": status, "head": head, "equal": echoed == payload, "received": len(echoed)}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("wrong-passwords")
    command.add_argument("url")
    command.add_argument("--user", default="robot")
    command.add_argument("--interval", type=float, default=0, help="pause after each answer, seconds")
    command.add_argument("--connections", type=int, default=50)
    command.add_argument("--seconds", type=float, default=5)
    command = commands.add_parser("idle")
    command.add_argument("host")
    command.add_argument("port", type=int)
    command.add_argument("--connections", type=int, default=1000)
    command.add_argument("--seconds", type=float, default=10)
    command.add_argument("--nonblocking", action="store_true", help="open all connections without waiting for them")
    command = commands.add_parser("burst")
    command.add_argument("host")
    command.add_argument("port", type=int)
    command.add_argument("--connections", type=int, default=1000)
    command.add_argument("--wait", type=float, default=1, help="seconds for the handshakes")
    command = commands.add_parser("window-update-flood")
    command.add_argument("host")
    command.add_argument("port", type=int)
    command.add_argument("--seconds", type=float, default=10)
    command = commands.add_parser("zero-window")
    command.add_argument("host")
    command.add_argument("port", type=int)
    command.add_argument("path")
    command.add_argument("--connections", type=int, default=40)
    command.add_argument("--streams", type=int, default=100)
    command.add_argument("--seconds", type=float, default=10)
    command.add_argument("--after-settings", action="store_true",
                         help="open the streams only once both sides acknowledged each other's SETTINGS")
    command.add_argument("--accept", help="an Accept header for every stream")
    command = commands.add_parser("odd-streams")
    command.add_argument("host")
    command.add_argument("port", type=int)
    command.add_argument("path")
    command.add_argument("--accept", default="*/*")
    command.add_argument("--seconds", type=float, default=10)
    command = commands.add_parser("silent-settings")
    command.add_argument("host")
    command.add_argument("port", type=int)
    command.add_argument("--seconds", type=float, default=20)
    command = commands.add_parser("proxy-head")
    command.add_argument("host")
    command.add_argument("port", type=int)
    command.add_argument("hex")
    command.add_argument("--seconds", type=float, default=10)
    command = commands.add_parser("proxy-tunnel")
    command.add_argument("host")
    command.add_argument("port", type=int)
    command.add_argument("target")
    command.add_argument("--bytes", type=int, default=1 << 20)
    args = parser.parse_args()
    {"wrong-passwords": wrong_passwords, "idle": idle, "burst": burst, "window-update-flood": window_update_flood,
     "zero-window": zero_window, "odd-streams": odd_streams, "silent-settings": silent_settings, "proxy-head": proxy_head,
     "proxy-tunnel": proxy_tunnel}[args.command](args)


if __name__ == "__main__":
    main()
