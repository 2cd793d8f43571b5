#!/usr/bin/env python3
"""Client helpers of the Fulcrum lab (run inside the client namespace).

    lab_client.py flows DST PORT LO HI [--udp] [--timeout S] [--parallel K]
        One new flow per client source port LO..HI (inclusive), each bound
        explicitly, so that a run is repeatable: the same ports give the same
        5-tuples, and Maglev with a fixed hash seed maps them to the same
        backends every time. TCP: GET /id with Connection: close, then an
        abortive close (SO_LINGER 0 -> RST) so that no TIME_WAIT is left on
        either side and the port can be used again at once. UDP: one datagram
        to the echo server. Prints "SRCPORT BACKEND" per flow, or
        "SRCPORT FAIL:reason".
    lab_client.py ping DST COUNT
        ICMP echo over a raw socket (the ping binary is not always installed).
    lab_client.py blobsum BYTES
        sha256 of the lab servers' /blob/BYTES content.
"""
import argparse
import concurrent.futures
import hashlib
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def tcp_flow(dst, port, sport, timeout):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.settimeout(timeout)
        s.bind(("", sport))
        s.connect((dst, port))
        s.sendall(("GET /id HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % dst).encode())
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            return "FAIL:bad-answer"
        name = body.decode(errors="replace").strip()
        return name if name else "FAIL:empty"
    except socket.timeout:
        return "FAIL:timeout"
    except OSError as e:
        return "FAIL:" + (os.strerror(e.errno).replace(" ", "-") if e.errno else "oserror")
    finally:
        s.close()


def udp_flow(dst, port, sport, timeout):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.settimeout(timeout)
        s.bind(("", sport))
        s.sendto(b"hello %d" % sport, (dst, port))
        data, addr = s.recvfrom(2048)
        # A nat reply must come back from the VIP, translated by fulcrumd.
        if addr != (dst, port):
            return "FAIL:reply-from-%s:%d" % addr
        parts = data.split()
        if len(parts) != 3 or parts[1:] != [b"hello", b"%d" % sport]:
            return "FAIL:bad-echo"
        return parts[0].decode(errors="replace")
    except socket.timeout:
        return "FAIL:timeout"
    except OSError as e:
        return "FAIL:" + (os.strerror(e.errno).replace(" ", "-") if e.errno else "oserror")
    finally:
        s.close()


def cmd_flows(a):
    fn = udp_flow if a.udp else tcp_flow
    ports = range(a.lo, a.hi + 1)
    with concurrent.futures.ThreadPoolExecutor(max_workers=a.parallel) as ex:
        results = list(ex.map(lambda p: fn(a.dst, a.port, p, a.timeout), ports))
    for p, r in zip(ports, results):
        print(p, r)
    return 0


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def cmd_ping(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    s.settimeout(1.0)
    ident = os.getpid() & 0xFFFF
    ok = 0
    for seq in range(a.count):
        payload = b"fulcrum-lab-ping" * 2
        hdr = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
        s.sendto(struct.pack("!BBHHH", 8, 0, csum(hdr + payload), ident, seq) + payload, (a.dst, 0))
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            try:
                d, addr = s.recvfrom(2048)
            except socket.timeout:
                break
            ihl = (d[0] & 15) * 4
            t, _, _, i, q = struct.unpack("!BBHHH", d[ihl:ihl + 8])
            if t == 0 and i == ident and q == seq and addr[0] == a.dst:
                good = csum(d[ihl:]) == 0 and d[ihl + 8:] == payload
                print("reply from %s seq=%d %s" % (addr[0], seq, "ok" if good else "BAD-CHECKSUM-OR-PAYLOAD"))
                ok += good
                break
        else:
            print("no reply seq=%d" % seq)
    print("%d/%d replies" % (ok, a.count))
    return 0 if ok == a.count else 1


def cmd_blobsum(a):
    from lab_servers import blob
    print(hashlib.sha256(blob(a.bytes)).hexdigest())
    return 0


def main():
    ap = argparse.ArgumentParser(description="Fulcrum lab client helpers")
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("flows")
    f.add_argument("dst")
    f.add_argument("port", type=int)
    f.add_argument("lo", type=int)
    f.add_argument("hi", type=int)
    f.add_argument("--udp", action="store_true")
    f.add_argument("--timeout", type=float, default=5.0)
    f.add_argument("--parallel", type=int, default=8)
    p = sub.add_parser("ping")
    p.add_argument("dst")
    p.add_argument("count", type=int)
    b = sub.add_parser("blobsum")
    b.add_argument("bytes", type=int)
    a = ap.parse_args()
    return {"flows": cmd_flows, "ping": cmd_ping, "blobsum": cmd_blobsum}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
