"""A plain TCP relay that can record the (api key, version) of every Kafka request.

Two uses, neither of them a replacement for the proxy under test:
- `tools/api_versions_report.py` puts it between a client and tansu (tansu
  advertising the relay's port) to learn which request versions each client
  library really sends;
- `pytest --proxy-stand-in` runs the proxy scenarios with this relay in the
  proxy's place (tansu advertising the relay's broker port), to prove the
  harness and the scenario code while the proxy binary is not built.

Run: python -m kafka_e2e.relay --map LISTEN_HOST:PORT=UP_HOST:PORT ... [--record FILE]
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


class Relay:
    def __init__(self, record_path: str | None):
        self.record = open(record_path, "a", buffering=1) if record_path else None

    async def serve(self, listen: str, upstream: str):
        lhost, lport = _split(listen)
        uhost, uport = _split(upstream)

        async def handle(cr: asyncio.StreamReader, cw: asyncio.StreamWriter):
            peer = cw.get_extra_info("peername")
            try:
                ur, uw = await asyncio.wait_for(asyncio.open_connection(uhost, uport), 5)
            except (OSError, asyncio.TimeoutError) as e:
                print(f"relay {listen}: upstream {upstream} unreachable for client {peer}: "
                      f"{e!r}; closing client connection", flush=True)
                cw.close()
                return
            up = asyncio.ensure_future(self._requests(cr, uw) if self.record else self._pipe(cr, uw))
            down = asyncio.ensure_future(self._pipe(ur, cw))
            await asyncio.wait([up, down], return_when=asyncio.FIRST_COMPLETED)
            for t in (up, down):
                t.cancel()
            for w in (uw, cw):
                w.close()

        server = await asyncio.start_server(handle, lhost, lport, reuse_address=True)
        print(f"relay listening on {listen} -> {upstream}", flush=True)
        return server

    @staticmethod
    async def _pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter):
        while True:
            data = await r.read(65536)
            if not data:
                return
            w.write(data)
            await w.drain()

    async def _requests(self, r: asyncio.StreamReader, w: asyncio.StreamWriter):
        """Forward whole request frames, recording each header."""
        while True:
            try:
                size_b = await r.readexactly(4)
                (size,) = struct.unpack(">i", size_b)
                frame = await r.readexactly(size)
            except asyncio.IncompleteReadError:
                return
            key, version, _corr = struct.unpack(">hhi", frame[:8])
            (cid_len,) = struct.unpack(">h", frame[8:10])
            client_id = frame[10 : 10 + cid_len].decode(errors="replace") if cid_len >= 0 else "-"
            self.record.write(f"{key} {version} {client_id}\n")
            w.write(size_b + frame)
            await w.drain()


async def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--map", action="append", required=True, help="LISTEN=UPSTREAM")
    ap.add_argument("--record", help="append 'api_key version client_id' per request here")
    args = ap.parse_args(argv)
    relay = Relay(args.record)
    servers = []
    for m in args.map:
        listen, _, upstream = m.partition("=")
        servers.append(await relay.serve(listen, upstream))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for s in servers:
        s.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
