#!/usr/bin/env python3
"""The CONNECT hop of the popular nginx MITM registry proxy, for `make bench`: nginx in Debian has
no CONNECT support (the popular setup builds nginx with ngx_http_proxy_connect_module and sends
every CONNECT to `proxy_connect_address`, nginx's own TLS listener). This does what that module
does there: accept `CONNECT host:port`, answer 200, and move bytes both ways to one fixed address,
zero-copy (splice through a pipe, as the kernel allows), a thread per direction.

  connect_relay.py LISTEN_PORT TARGET_PORT     (both on 127.0.0.1)
"""
import os
import socket
import sys
import threading

CHUNK = 1 << 20


def pump(source, destination):
    read_end, write_end = os.pipe()
    try:
        while True:
            moved = os.splice(source.fileno(), write_end, CHUNK)
            if moved == 0:
                break
            while moved:
                moved -= os.splice(read_end, destination.fileno(), moved)
    except OSError:
        pass
    finally:
        os.close(read_end)
        os.close(write_end)
        for sock in (source, destination):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(client, target_port):
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = client.recv(4096)
        if not chunk or len(head) > 8192:
            client.close()
            return
        head += chunk
    head, _, rest = head.partition(b"\r\n\r\n")
    if not head.startswith(b"CONNECT "):
        client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
        client.close()
        return
    upstream = socket.create_connection(("127.0.0.1", target_port))
    for sock in (client, upstream):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
    if rest:
        upstream.sendall(rest)
    threading.Thread(target=pump, args=(upstream, client), daemon=True).start()
    pump(client, upstream)


def main():
    listen_port, target_port = int(sys.argv[1]), int(sys.argv[2])
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", listen_port))
    listener.listen(256)
    while True:
        client, _ = listener.accept()
        threading.Thread(target=serve, args=(client, target_port), daemon=True).start()


if __name__ == "__main__":
    main()
