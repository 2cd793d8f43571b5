#!/usr/bin/env python3
"""Backend servers of the Fulcrum lab (tools/lab.sh starts one per backend namespace).

    lab_servers.py NAME [--http PORT ...] [--udp PORT ...]

HTTP (every --http port, HTTP/1.1 with keep-alive, "Connection: close" honoured):
    GET /id          -> "NAME\n"              (header X-Backend: NAME on every answer)
    GET /blob/BYTES  -> BYTES of deterministic content (lab_client.py blobsum BYTES
                        prints its sha256), for transfers whose integrity is checked
UDP (every --udp port): echo, prefixed with the name: "NAME <datagram>".

Written for the lab rather than taken from nginx so that one process per backend
serves both ports and UDP, and so that the big transfers are checkable.
"""
import argparse
import random
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Content of /blob/N: the first N bytes of one seeded pseudo-random stream, so
# that a reordered, duplicated or corrupted TCP segment changes the checksum
# (a repeating pattern could hide a misplaced segment).
BLOB_SEED = 0x46756C63
BLOB_MAX = 64 << 20
_blob = b""
_blob_lock = threading.Lock()


def blob(n):
    global _blob
    with _blob_lock:
        if len(_blob) < n:
            _blob = random.Random(BLOB_SEED).randbytes(n)
        return memoryview(_blob)[:n]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fulcrum-lab"
    sys_version = ""

    def setup(self):
        super().setup()
        # Headers and body go out in separate writes; without NODELAY, Nagle
        # holds the body until the client's delayed ACK (40 ms per request).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self):
        name = self.server.backend_name
        if self.path == "/id" or self.path.startswith("/id?"):
            self.answer(200, (name + "\n").encode())
        elif self.path.startswith("/blob/"):
            try:
                n = int(self.path[6:])
            except ValueError:
                n = -1
            if n < 0 or n > BLOB_MAX:
                self.answer(400, b"bad size\n")
            else:
                self.answer(200, blob(n))
        else:
            self.answer(404, b"try /id or /blob/BYTES\n")

    def answer(self, code, body):
        self.send_response(code)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Backend", self.server.backend_name)
        self.end_headers()
        try:
            # Large bodies in slices: a rate-limited client then reads a steady
            # stream instead of one write blocking on a huge buffer.
            for off in range(0, len(body), 65536):
                self.wfile.write(body[off:off + 65536])
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def log_message(self, fmt, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # The default backlog of 5 drops SYNs under wrk -c8 with Connection: close,
    # and a dropped SYN costs the client a 1 s retransmission.
    request_queue_size = 256

    def handle_error(self, request, client_address):
        pass


def udp_echo(port, name):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    prefix = name.encode() + b" "
    while True:
        data, addr = s.recvfrom(65535)
        s.sendto(prefix + data, addr)


def main():
    ap = argparse.ArgumentParser(description="Fulcrum lab backend servers")
    ap.add_argument("name")
    ap.add_argument("--http", type=int, action="append", default=[])
    ap.add_argument("--udp", type=int, action="append", default=[])
    a = ap.parse_args()
    if not a.http and not a.udp:
        ap.error("give at least one --http or --udp port")
    threads = []
    for p in a.udp:
        threads.append(threading.Thread(target=udp_echo, args=(p, a.name), daemon=True))
    for p in a.http:
        srv = Server(("0.0.0.0", p), Handler)
        srv.backend_name = a.name
        threads.append(threading.Thread(target=srv.serve_forever, daemon=True))
    for t in threads:
        t.start()
    print("%s: http %s udp %s" % (a.name, a.http, a.udp), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
