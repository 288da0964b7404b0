"""A minimal blocking Kafka wire client for probes that real clients hide.

Only what the suite checks by hand: ApiVersions (v0, v3), Metadata (v1, v12),
FindCoordinator (v1, v4) and DescribeCluster (v0). Client libraries pick their
own versions; these probes pin versions so the proxy's rewriting of every
address-bearing response is seen at a non-flexible and a flexible version.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field

API_NAMES = {
    0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 8: "OffsetCommit",
    9: "OffsetFetch", 10: "FindCoordinator", 11: "JoinGroup", 12: "Heartbeat",
    13: "LeaveGroup", 14: "SyncGroup", 15: "DescribeGroups", 16: "ListGroups",
    17: "SaslHandshake", 18: "ApiVersions", 19: "CreateTopics", 20: "DeleteTopics",
    21: "DeleteRecords", 22: "InitProducerId", 23: "OffsetForLeaderEpoch",
    24: "AddPartitionsToTxn", 25: "AddOffsetsToTxn", 26: "EndTxn", 28: "TxnOffsetCommit",
    29: "DescribeAcls", 30: "CreateAcls", 31: "DeleteAcls", 32: "DescribeConfigs",
    33: "AlterConfigs", 36: "SaslAuthenticate", 37: "CreatePartitions",
    42: "DeleteGroups", 44: "IncrementalAlterConfigs", 46: "ListPartitionReassignments",
    47: "OffsetDelete", 50: "DescribeUserScramCredentials", 51: "AlterUserScramCredentials",
    60: "DescribeCluster", 61: "DescribeProducers", 65: "DescribeTransactions",
    66: "ListTransactions", 68: "ConsumerGroupHeartbeat", 69: "ConsumerGroupDescribe",
    71: "GetTelemetrySubscriptions", 72: "PushTelemetry", 75: "DescribeTopicPartitions",
}


class WireError(RuntimeError):
    """The peer closed, timed out or sent bytes this probe cannot decode."""


class Reader:
    """Cursor over one response body, both classic and flexible encodings."""

    def __init__(self, data: bytes):
        self.data = data
        self.off = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.off + n > len(self.data):
            raise WireError(f"short response: need {n} bytes at {self.off}, have {len(self.data)}")
        b = self.data[self.off : self.off + n]
        self.off += n
        return b

    def i8(self) -> int:
        return struct.unpack(">b", self.take(1))[0]

    def i16(self) -> int:
        return struct.unpack(">h", self.take(2))[0]

    def i32(self) -> int:
        return struct.unpack(">i", self.take(4))[0]

    def uvarint(self) -> int:
        value, shift = 0, 0
        for _ in range(5):
            b = self.take(1)[0]
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7
        raise WireError("unsigned varint longer than 5 bytes")

    def string(self) -> str | None:
        n = self.i16()
        return None if n < 0 else self.take(n).decode()

    def compact_string(self) -> str | None:
        n = self.uvarint()
        return None if n == 0 else self.take(n - 1).decode()

    def array_len(self) -> int:
        return self.i32()

    def compact_array_len(self) -> int:
        return self.uvarint() - 1

    def tagged_fields(self) -> dict[int, bytes]:
        out = {}
        for _ in range(self.uvarint()):
            tag = self.uvarint()
            out[tag] = self.take(self.uvarint())
        return out

    def rest(self) -> bytes:
        return self.take(len(self.data) - self.off)


def _string(s: str | None) -> bytes:
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        if n < 0x80:
            out.append(n)
            return bytes(out)
        out.append((n & 0x7F) | 0x80)
        n >>= 7


def _compact_string(s: str | None) -> bytes:
    if s is None:
        return b"\x00"
    b = s.encode()
    return _uvarint(len(b) + 1) + b


@dataclass
class Broker:
    node_id: int
    host: str
    port: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass
class ApiVersionsResult:
    error_code: int
    ranges: dict[int, tuple[int, int]]
    tagged_fields: dict[int, bytes] = field(default_factory=dict)
    raw_body: bytes = b""


@dataclass
class MetadataResult:
    brokers: list[Broker]
    controller_id: int
    cluster_id: str | None = None


@dataclass
class CoordinatorResult:
    error_code: int
    node: Broker


class KafkaWire:
    """One TCP connection speaking length-prefixed Kafka frames, with a socket timeout."""

    def __init__(self, host: str, port: int, timeout: float = 5.0, client_id: str = "e2e-probe"):
        self.client_id = client_id
        self.correlation = 0
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as e:
            raise WireError(f"connect {host}:{port}: {e}") from e

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _recv_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            try:
                chunk = self.sock.recv(n - len(buf))
            except socket.timeout as e:
                raise WireError("timed out waiting for a response") from e
            if not chunk:
                raise WireError("connection closed by peer")
            buf += chunk
        return bytes(buf)

    def send_only(self, api_key: int, version: int, body: bytes, flexible_header: bool) -> None:
        """Send one request (header v1, or v2 when `flexible_header`) without waiting for an answer."""
        self.correlation += 1
        header = struct.pack(">hhi", api_key, version, self.correlation) + _string(self.client_id)
        if flexible_header:
            header += b"\x00"
        frame = header + body
        self.sock.sendall(struct.pack(">i", len(frame)) + frame)

    def request(self, api_key: int, version: int, body: bytes, flexible_header: bool) -> bytes:
        """Send one request; return the response bytes after the correlation id."""
        self.send_only(api_key, version, body, flexible_header)
        (size,) = struct.unpack(">i", self._recv_exact(4))
        if size < 4 or size > 64 * 1024 * 1024:
            raise WireError(f"implausible response size {size}")
        data = self._recv_exact(size)
        (corr,) = struct.unpack(">i", data[:4])
        if corr != self.correlation:
            raise WireError(f"correlation id {corr}, expected {self.correlation}")
        return data[4:]

    def api_versions(self, version: int = 0) -> ApiVersionsResult:
        if version >= 3:
            body = _compact_string("e2e-probe") + _compact_string("1.0") + b"\x00"
            # ApiVersions responses always use response header v0 (no tagged fields).
            r = Reader(self.request(18, version, body, flexible_header=True))
            error = r.i16()
            ranges = {}
            for _ in range(r.compact_array_len()):
                key, lo, hi = r.i16(), r.i16(), r.i16()
                r.tagged_fields()
                ranges[key] = (lo, hi)
            r.i32()  # throttle
            tags = r.tagged_fields()
            return ApiVersionsResult(error, ranges, tags, r.data)
        r = Reader(self.request(18, version, b"", flexible_header=False))
        error = r.i16()
        ranges = {}
        for _ in range(r.array_len()):
            key, lo, hi = r.i16(), r.i16(), r.i16()
            ranges[key] = (lo, hi)
        return ApiVersionsResult(error, ranges, {}, r.data)

    def metadata(self, version: int = 1) -> MetadataResult:
        if version == 1:
            r = Reader(self.request(3, 1, struct.pack(">i", -1), flexible_header=False))
            brokers = []
            for _ in range(r.array_len()):
                node, host, port = r.i32(), r.string(), r.i32()
                r.string()  # rack
                brokers.append(Broker(node, host, port))
            return MetadataResult(brokers, r.i32())
        if version == 12:
            body = b"\x00" + b"\x00" + b"\x00" + b"\x00"  # null topics, no auto-create, no ops, tags
            r = Reader(self.request(3, 12, body, flexible_header=True))
            r.tagged_fields()  # response header v1
            r.i32()  # throttle
            brokers = []
            for _ in range(r.compact_array_len()):
                node, host, port = r.i32(), r.compact_string(), r.i32()
                r.compact_string()  # rack
                r.tagged_fields()
                brokers.append(Broker(node, host, port))
            cluster = r.compact_string()
            return MetadataResult(brokers, r.i32(), cluster)
        raise ValueError(f"Metadata v{version} is not implemented by this probe")

    def find_coordinator(self, group: str, version: int = 1) -> CoordinatorResult:
        if version == 1:
            r = Reader(self.request(10, 1, _string(group) + b"\x00", flexible_header=False))
            r.i32()  # throttle
            error = r.i16()
            r.string()
            return CoordinatorResult(error, Broker(r.i32(), r.string(), r.i32()))
        if version == 4:
            body = b"\x00" + _uvarint(2) + _compact_string(group) + b"\x00"
            r = Reader(self.request(10, 4, body, flexible_header=True))
            r.tagged_fields()
            r.i32()
            n = r.compact_array_len()
            if n != 1:
                raise WireError(f"FindCoordinator v4: {n} coordinators for one key")
            r.compact_string()  # key
            node, host, port = r.i32(), r.compact_string(), r.i32()
            error = r.i16()
            return CoordinatorResult(error, Broker(node, host, port))
        raise ValueError(f"FindCoordinator v{version} is not implemented by this probe")

    def describe_cluster(self) -> MetadataResult:
        r = Reader(self.request(60, 0, b"\x00\x00", flexible_header=True))
        r.tagged_fields()
        r.i32()
        error = r.i16()
        message = r.compact_string()
        if error:
            raise WireError(f"DescribeCluster error {error}: {message}")
        cluster = r.compact_string()
        controller = r.i32()
        brokers = []
        for _ in range(r.compact_array_len()):
            node, host, port = r.i32(), r.compact_string(), r.i32()
            r.compact_string()
            r.tagged_fields()
            brokers.append(Broker(node, host, port))
        return MetadataResult(brokers, controller, cluster)


def parse_request_header(frame: bytes) -> tuple[int, int, int]:
    """(api_key, api_version, correlation_id) of one request frame without its size prefix."""
    if len(frame) < 8:
        raise WireError("request frame shorter than its header")
    return struct.unpack(">hhi", frame[:8])
