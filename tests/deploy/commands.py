"""Running the tools these tests drive (dpkg, cargo-deb, buildah, the binary), with bounded waits."""

from __future__ import annotations

import subprocess


def run(*argv, check: bool = True, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    """Runs argv (text output); with `check`, a non-zero exit fails with both outputs."""
    r = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, argv))} exited {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r
