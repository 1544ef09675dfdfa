"""The message broker of seed 003 ("Build Your Own Messaging Network"), the Python peer of
figure 4.

It follows the tutorial's design: one asyncio `websockets` server; text commands
`SUBSCRIBE:<channel>` and `PUBLISH:<channel>:<message>`; every message stored in memory per
channel (`defaultdict(list)`); subscribers kept per channel (`defaultdict(set)`); and a
publish fanned out by awaiting `send` to each subscriber in turn, as `MSG:<channel>:<message>`.

Two changes keep it running under load, neither of which makes it faster: the fan-out loop
iterates over a copy of the subscriber set (the tutorial's loop fails with "Set changed size
during iteration" when a client subscribes mid-publish), and a subscriber that disconnects is
removed (the tutorial would keep failing to send to it).

Usage: python3 bench/pybroker.py [HOST] [PORT]   (default 127.0.0.1 8765)
"""

import asyncio
import sys
from collections import defaultdict

import websockets

# 1. Stores messages per channel
channels = defaultdict(list)  # e.g., {"news": ["Hello!", "Breaking!"]}

# 2. Tracks active subscribers
subscribers = defaultdict(set)  # e.g., {"news": {websocket1, websocket2}}


# 3. Handles incoming messages
async def handle_client(websocket, path=None):
    joined = set()
    try:
        async for message in websocket:
            if message.startswith("SUBSCRIBE:"):
                channel = message[len("SUBSCRIBE:"):]
                subscribers[channel].add(websocket)  # Add to subscription list
                joined.add(channel)
            elif message.startswith("PUBLISH:"):
                _, channel, content = message.split(":", 2)
                channels[channel].append(content)
                for subscriber in list(subscribers[channel]):  # Fan-out to subscribers
                    try:
                        await subscriber.send(f"MSG:{channel}:{content}")
                    except websockets.ConnectionClosed:
                        subscribers[channel].discard(subscriber)
    except websockets.ConnectionClosed:
        pass
    finally:
        for channel in joined:
            subscribers[channel].discard(websocket)


async def main():
    host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 8765
    async with websockets.serve(handle_client, host, port):
        print(f"Broker starts at: ws://{host}:{port}", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main())
