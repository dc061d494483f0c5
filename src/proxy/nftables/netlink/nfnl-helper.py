#!/usr/bin/env python3
# berth's nf_tables netlink transport (src/proxy/nftables/netlink/transport.ts starts it, once per proxier, inside
# the proxier's network namespace). Node has no AF_NETLINK socket; this process owns one NETLINK_NETFILTER socket
# and moves bytes: it knows nothing of nf_tables. Standard library only.
#
# Request on stdin:   u32le length of the rest | u8 op ('x') | u32le terminal seq | netlink bytes to send
# Answer on stdout:   u32le length of the rest | u8 status | bytes
#   status 0: the netlink messages received, concatenated, up to and including the terminal one: an NLMSG_ERROR
#             (ack or error) or NLMSG_DONE whose sequence number is the terminal seq.
#   status 1: the terminal message did not come within the timeout; bytes = what did come.
#   status 2: an OSError; bytes = its text (utf-8).
# On start it answers once: status 0, bytes "ready". One request at a time; exits when stdin closes.
import select
import socket
import struct
import sys

NETLINK_NETFILTER = 12
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33
NLMSG_ERROR = 2
NLMSG_DONE = 3
# The kernel processes a batch inside send(); what follows is only its replies, so a long wait means trouble.
TIMEOUT_S = 120.0


def read_exact(f, n):
    chunks = []
    while n > 0:
        b = f.read(n)
        if not b:
            return None
        chunks.append(b)
        n -= len(b)
    return b''.join(chunks)


def answer(out, status, payload):
    out.write(struct.pack('<IB', len(payload) + 1, status))
    out.write(payload)
    out.flush()


def main():
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.bind((0, 0))
    for opt in (NETLINK_CAP_ACK, NETLINK_EXT_ACK):
        try:
            sock.setsockopt(SOL_NETLINK, opt, 1)
        except OSError:
            pass
    rcvbuf = 64 << 20
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sndbuf = 0
    buf = bytearray(1 << 20)
    inp = sys.stdin.buffer
    out = sys.stdout.buffer
    answer(out, 0, b'ready')
    while True:
        head = read_exact(inp, 4)
        if head is None:
            return
        (length,) = struct.unpack('<I', head)
        body = read_exact(inp, length)
        if body is None:
            return
        _op, terminal = struct.unpack('<BI', body[:5])
        data = body[5:]
        try:
            if len(data) + 4096 > sndbuf:
                sndbuf = max(len(data) + 4096, 1 << 20)
                try:
                    sock.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, sndbuf)
                except OSError:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
            sock.send(data)
            got = []
            done = False
            while not done:
                r, _, _ = select.select([sock], [], [], TIMEOUT_S)
                if not r:
                    break
                n = sock.recv_into(buf)
                chunk = bytes(buf[:n])
                got.append(chunk)
                off = 0
                while off + 16 <= n:
                    mlen, mtype, _flags, seq = struct.unpack_from('<IHHI', chunk, off)
                    if mlen < 16:
                        break
                    if seq == terminal and mtype in (NLMSG_ERROR, NLMSG_DONE):
                        done = True
                    off += (mlen + 3) & ~3
            answer(out, 0 if done else 1, b''.join(got))
        except OSError as e:
            answer(out, 2, str(e).encode('utf-8', 'replace'))


if __name__ == '__main__':
    try:
        main()
    except (BrokenPipeError, KeyboardInterrupt):
        pass
