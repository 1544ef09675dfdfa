#!/usr/bin/env python3
"""Hostile clients against a release `wisp serve config`, with a probe beside them.

Every 50 ms the probe opens a fresh connection (from 127.0.0.9, so the per-address limit
the attackers run into is not its own) and asks `GET /ping`. Each attack runs for a few
seconds from other loopback addresses; then the script waits for the server to settle and
reads its RSS. It prints, per attack: probe failures, the probe's worst latency, and RSS
before, during and after.

    cargo build --release -p wisp -p wisp-bench && target/release/wisp build config
    python3 bench/attacks/run.py [--wisp target/release/wisp]
"""
import argparse, asyncio, base64, json, os, resource, socket, subprocess, sys, time

PROBE_ADDR = "127.0.0.9"


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Probe:
    def __init__(self, port):
        self.port, self.failures, self.worst, self.count, self.running = port, 0, 0.0, 0, True

    def reset(self):
        self.failures, self.worst, self.count = 0, 0.0, 0

    async def run(self):
        while self.running:
            start = time.monotonic()
            try:
                r, w = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", self.port, local_addr=(PROBE_ADDR, 0)), 2)
                w.write(b"GET /ping HTTP/1.1\r\nHost: wisp\r\nConnection: close\r\n\r\n")
                answer = await asyncio.wait_for(r.read(), 2)
                w.close()
                if not answer.startswith(b"HTTP/1.1 200"):
                    self.failures += 1
            except Exception:
                self.failures += 1
            self.worst = max(self.worst, time.monotonic() - start)
            self.count += 1
            await asyncio.sleep(0.05)


async def connect(port, source):
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


def sources(n):
    return [f"127.0.0.{2 + i % 6}" for i in range(n)]


async def http_get(port, path):
    r, w = await connect(port, "127.0.0.8")
    w.write(f"GET {path} HTTP/1.1\r\nHost: wisp\r\nConnection: close\r\n\r\n".encode())
    answer = await r.read()
    w.close()
    return answer


async def ws_open(port, path, source):
    r, w = await connect(port, source)
    key = base64.b64encode(os.urandom(16)).decode()
    w.write((f"GET /{path} HTTP/1.1\r\nHost: wisp\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = await r.readuntil(b"\r\n\r\n")
    assert b" 101 " in head, head
    return r, w


def masked(opcode, payload):
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + body


async def ping_flood(port, seconds):
    answer = await http_get(port, "/api/websocket?room=attack")
    url = json.loads(answer.split(b"\r\n\r\n", 1)[1])["websocket_url"]
    clients = [await ws_open(port, url, s) for s in sources(4)]
    for _, w in clients:
        w.transport.set_write_buffer_limits(high=1 << 20)
    frame = masked(0x9, b"p" * 125)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for _, w in clients:
            if not w.is_closing():
                w.write(frame * 64)
        await asyncio.sleep(0.001)
    for _, w in clients:
        w.close()


async def slow_bodies(port, seconds, n=1100):
    held = []
    for s in sources(n):
        try:
            r, w = await connect(port, s)
            w.write(b"POST /api/publish?channel=test-channel HTTP/1.1\r\nHost: wisp\r\nContent-Length: 100000\r\n\r\nx")
            held.append(w)
        except OSError:
            pass
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for w in held:
            if not w.is_closing():
                w.write(b"x")
        await asyncio.sleep(1)
    for w in held:
        w.close()


async def rooms(port, seconds, n=20000):
    end, i = time.monotonic() + seconds, 0
    while time.monotonic() < end and i < n:
        batch = [http_get(port, f"/api/websocket?room=r{i + k}") for k in range(50)]
        await asyncio.gather(*batch, return_exceptions=True)
        i += 50


async def idle(port, seconds, n=5000):
    held = []
    for s in sources(n):
        try:
            held.append((await connect(port, s))[1])
        except OSError:
            pass
    await asyncio.sleep(seconds)
    for w in held:
        w.close()


async def huge_query(port, seconds):
    query = "&".join(f"k{i}=v" for i in range(8000))
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        await http_get(port, f"/ping?{query}")


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--wisp", default="target/release/wisp")
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([args.wisp, "serve", "config", "--listen", f"127.0.0.1:{port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                await http_get(port, "/ping")
                break
            except OSError:
                await asyncio.sleep(0.1)
        probe = Probe(port)
        probe_task = asyncio.create_task(probe.run())
        print("| attack | probe requests | probe failures | worst probe latency | RSS before → during → after |")
        print("|---|---|---|---|---|")
        for name, attack in [("ping flood, 4 clients that never read", ping_flood),
                             ("1,100 slow request bodies", slow_bodies),
                             ("distinct rooms, each a guest Subscribe()", rooms),
                             ("5,000 idle connections, then closed", idle),
                             ("8,000 query parameters, repeated", huge_query)]:
            await asyncio.sleep(2)
            before = rss_mib(server.pid)
            probe.reset()
            task = asyncio.create_task(attack(port, args.seconds))
            await asyncio.sleep(args.seconds * 0.8)
            during = rss_mib(server.pid)
            try:
                await asyncio.wait_for(task, args.seconds * 4)
            except Exception as error:
                print(f"# {name}: the attack itself stopped: {error!r}", file=sys.stderr)
            await asyncio.sleep(5)
            after = rss_mib(server.pid)
            print(f"| {name} | {probe.count} | {probe.failures} | {probe.worst * 1000:.0f} ms "
                  f"| {before:.0f} → {during:.0f} → {after:.0f} MiB |", flush=True)
        probe.running = False
        await probe_task
    finally:
        server.terminate()
        server.wait()


asyncio.run(main())
