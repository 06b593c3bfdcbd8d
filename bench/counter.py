"""Counting subscribers in a process of their own, on a bare epoll loop.

The load generator shares the machine with the hub, so its cost per read matters: asyncio
spends about 15 us of CPU per small read here, this loop about 9. Each client subscribes
to the bench topic (handshake and frames parsed until the ack), then only adds the bytes
it reads to its slot of a shared counter file (one native unsigned 64-bit integer per
client), which the driving process reads without asking. With `--deflate` the clients offer
permessage-deflate and refuse to count unless the hub agreed to it without context
takeover: the bytes counted are then those of the shared compressed frames.

Driven over stdin, one command a line, each answered on stdout:
  open N    open and subscribe N more clients        -> OPENED <total>
  pause     stop reading (slow consumers from now)   -> PAUSED
  quit, or stdin closed: exit (the driver died or is done)
"""

from __future__ import annotations

import argparse
import base64
import errno
import json
import mmap
import os
import select
import socket
import sys
import time

from bench.server import TOPIC, raise_nofile

HANDSHAKE = (
    "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Protocol: ocos.v1\r\n{extensions}\r\n"
)
# what a browser offers; the hub must answer with server_no_context_takeover
DEFLATE_OFFER = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
SUBSCRIBE = json.dumps({"type": "subscribe", "id": 1, "topic": TOPIC}).encode()


def check_deflate(head: bytes) -> None:
    """Fail loudly unless the 101 response agreed to permessage-deflate with
    server_no_context_takeover (each message compressed on its own, so shared)."""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-extensions":
            params = [p.strip() for p in value.decode().split(";")]
            if params[0] == "permessage-deflate" and "server_no_context_takeover" in params:
                return
            raise ConnectionError(f"the hub answered {value.decode().strip()!r}")
    raise ConnectionError("the hub did not agree to permessage-deflate")


def masked(payload: bytes) -> bytes:
    mask = os.urandom(4)
    return (bytes((0x81, 0x80 | len(payload))) + mask
            + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


class Setup:
    """A client between connect and its subscribe's ack: everything is parsed."""

    __slots__ = ("sock", "slot", "buf", "upgraded", "deflate")

    def __init__(self, sock: socket.socket, slot: int, deflate: bool) -> None:
        self.sock, self.slot, self.deflate = sock, slot, deflate
        self.buf = bytearray()
        self.upgraded = False

    def feed(self, data: bytes) -> int | None:
        """None while waiting; once acked, how many bytes followed the ack (events)."""
        self.buf += data
        buf = self.buf
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return None
            if b" 101 " not in buf[:end].split(b"\r\n", 1)[0]:
                raise ConnectionError(bytes(buf[:end]).decode(errors="replace"))
            if self.deflate:
                check_deflate(bytes(buf[:end]))
            del buf[:end + 4]
            self.upgraded = True
            self.sock.sendall(masked(SUBSCRIBE))
        while len(buf) >= 2:
            size, head = buf[1] & 0x7F, 2
            if size == 126:
                size, head = int.from_bytes(buf[2:4], "big"), 4
            if len(buf) < head + size:
                return None
            opcode, payload = buf[0] & 0x0F, bytes(buf[head:head + size])
            compressed = buf[0] & 0x40
            del buf[:head + size]
            if opcode != 0x1 or compressed:  # replies (the ack) are never compressed
                continue
            msg = json.loads(payload)
            if msg.get("type") == "ack" and msg.get("id") == 1:
                return len(buf)
            if msg.get("type") == "error":
                raise ConnectionError(f"refused: {msg}")
        return None


def run(args: argparse.Namespace) -> None:
    raise_nofile()
    fd = os.open(args.counts, os.O_RDWR)
    try:
        counts_map = mmap.mmap(fd, 0)
    finally:
        os.close(fd)
    counts = memoryview(counts_map).cast("Q")
    epoll = select.epoll()
    stdin = sys.stdin.fileno()
    os.set_blocking(stdin, False)
    epoll.register(stdin, select.EPOLLIN)
    live: dict[int, tuple[socket.socket, int]] = {}
    setup: dict[int, Setup] = {}
    opened = 0
    scratch = bytearray(1 << 18)
    pending = b""
    paused = False
    while True:
        for fileno, _ in epoll.poll(0.5):
            entry = live.get(fileno)
            if entry is not None:  # the hot path: one recv_into and one add per read
                try:
                    n = entry[0].recv_into(scratch)
                except BlockingIOError:
                    continue
                except OSError:
                    n = 0
                if n == 0:
                    epoll.unregister(fileno)
                    del live[fileno]
                    continue
                counts[entry[1]] += n
                continue
            if fileno == stdin:
                try:
                    chunk = os.read(stdin, 4096)
                except BlockingIOError:
                    continue
                if not chunk:
                    return
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    words = line.decode().split()
                    if not words or words[0] == "quit":
                        return
                    if words[0] == "open":
                        count = int(words[1])
                        for slot in range(args.first + opened, args.first + opened + count):
                            sock = connect(args.port, args.rcvbuf, args.deflate)
                            setup[sock.fileno()] = Setup(sock, slot, args.deflate)
                            epoll.register(sock.fileno(), select.EPOLLIN)
                        opened += count
                    elif words[0] == "pause":
                        paused = True
                        for fileno_ in list(live):
                            epoll.unregister(fileno_)
                        print("PAUSED", flush=True)
                continue
            client = setup[fileno]
            data = client.sock.recv(65536)
            if not data:
                raise ConnectionError("closed during the handshake")
            extra = client.feed(data)
            if extra is None:
                continue
            del setup[fileno]
            counts[client.slot] += extra
            if paused:
                epoll.unregister(fileno)
            else:
                live[fileno] = (client.sock, client.slot)
            if not setup:
                print(f"OPENED {opened}", flush=True)


def connect(port: int, rcvbuf: int, deflate: bool) -> socket.socket:
    """A connected socket that sent its handshake; retried while the backlog is full."""
    for attempt in range(20):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        try:
            sock.connect(("127.0.0.1", port))
        except OSError as exc:
            sock.close()
            if exc.errno not in (errno.ECONNREFUSED, errno.EAGAIN) or attempt == 19:
                raise
            time.sleep(0.05 * (attempt + 1))
            continue
        key = base64.b64encode(os.urandom(16)).decode()
        offer = DEFLATE_OFFER if deflate else ""
        sock.sendall(HANDSHAKE.format(port=port, key=key, extensions=offer).encode())
        sock.setblocking(False)
        return sock
    raise AssertionError("unreachable")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--counts", required=True, help="the shared counter file")
    parser.add_argument("--first", type=int, default=0, help="this process's first slot")
    parser.add_argument("--rcvbuf", type=int, default=0, help="SO_RCVBUF, 0 for the default")
    parser.add_argument("--deflate", action="store_true",
                        help="negotiate permessage-deflate (the hub must agree)")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
