"""A TCP relay in front of a broker that holds back the responses to one API.

The fault injector of the operations tests: the proxy's upstream is this relay,
which forwards every byte between the proxy and tansu, except that responses to
requests of the chosen API key are delayed by `--hold-seconds` (responses after
them wait too, so order is kept) or, with `--hold-seconds -1`, swallowed: the
broker "stops answering" that request while the connection stays up.

Run: python -m kafka_e2e.fault_relay --listen HOST:PORT --upstream HOST:PORT
                                     --hold-api KEY --hold-seconds S
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import struct
import sys


def _split(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host, int(port)


async def _frames(reader: asyncio.StreamReader):
    """Yield whole Kafka frames (size prefix included) until end of stream."""
    while True:
        try:
            size_b = await reader.readexactly(4)
            (size,) = struct.unpack(">i", size_b)
            body = await reader.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        yield size_b + body


class FaultRelay:
    def __init__(self, upstream: str, hold_api: int, hold_seconds: float):
        self.upstream = _split(upstream)
        self.hold_api = hold_api
        self.hold_seconds = hold_seconds

    async def handle(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter):
        try:
            ur, uw = await asyncio.wait_for(asyncio.open_connection(*self.upstream), 5)
        except (OSError, asyncio.TimeoutError) as e:
            print(f"fault relay: upstream unreachable: {e!r}", flush=True)
            cw.close()
            return
        apis: dict[int, int] = {}

        async def requests():
            async for frame in _frames(cr):
                api_key, _version, corr = struct.unpack(">hhi", frame[4:12])
                apis[corr] = api_key
                uw.write(frame)
                await uw.drain()

        async def responses():
            async for frame in _frames(ur):
                (corr,) = struct.unpack(">i", frame[4:8])
                if apis.pop(corr, None) == self.hold_api:
                    if self.hold_seconds < 0:
                        print(f"fault relay: swallowed the response to correlation id {corr}", flush=True)
                        continue
                    print(f"fault relay: holding correlation id {corr} for {self.hold_seconds}s", flush=True)
                    await asyncio.sleep(self.hold_seconds)
                cw.write(frame)
                await cw.drain()

        tasks = [asyncio.ensure_future(requests()), asyncio.ensure_future(responses())]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in tasks:
            t.cancel()
        for w in (uw, cw):
            w.close()


async def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--hold-api", type=int, required=True)
    ap.add_argument("--hold-seconds", type=float, required=True, help="-1: never answer")
    args = ap.parse_args(argv)
    relay = FaultRelay(args.upstream, args.hold_api, args.hold_seconds)
    host, port = _split(args.listen)
    server = await asyncio.start_server(relay.handle, host, port, reuse_address=True)
    print(f"fault relay listening on {args.listen} -> {args.upstream}, holding api {args.hold_api}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
