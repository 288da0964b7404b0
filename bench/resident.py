"""Which pages of a process's file mappings are resident, in runs.

    python3 bench/resident.py PID [PATH-SUBSTRING]

For each mapping of PID whose file path contains PATH-SUBSTRING (default: every file
mapping), prints its pages, how many are resident (from /proc/PID/pagemap, bit 63) and the
lengths of the resident runs. The kernel maps file pages in 64 KiB windows around a fault
(fault-around), so runs come in multiples of 16 pages: one per window where something ran
or was read. Needs permission to read /proc/PID/pagemap (the presence bit needs no
privilege beyond that). The memory section of bench/README.md uses it.
"""

from __future__ import annotations

import collections
import struct
import sys

PAGE = 4096


def resident_runs(pid: int, lo: int, hi: int) -> list[tuple[int, int]]:
    """(first page, length) of each run of resident pages in [lo, hi)."""
    pages = (hi - lo) // PAGE
    with open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        pagemap.seek(lo // PAGE * 8)
        raw = pagemap.read(pages * 8)
    present = [struct.unpack_from("<Q", raw, i * 8)[0] >> 63 for i in range(len(raw) // 8)]
    runs = []
    start = None
    for i, bit in enumerate(present + [0]):
        if bit and start is None:
            start = i
        elif not bit and start is not None:
            runs.append((start, i - start))
            start = None
    return runs


def main() -> int:
    if len(sys.argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    pid = int(sys.argv[1])
    needle = sys.argv[2] if len(sys.argv) == 3 else "/"
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            fields = line.split()
            if len(fields) < 6 or needle not in fields[5]:
                continue
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            runs = resident_runs(pid, lo, hi)
            resident = sum(n for _, n in runs)
            lengths = sorted(collections.Counter(n for _, n in runs).items())
            print(f"{fields[1]} {fields[5]}: {(hi - lo) // PAGE} pages, {resident} resident "
                  f"({resident * PAGE // 1024} KiB) in {len(runs)} runs; run length: count {lengths}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
