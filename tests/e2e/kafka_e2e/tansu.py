"""A tansu 0.6.0 broker on a loopback port (node id 111, memory storage by default)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .paths import tansu_binary
from .ports import HOST
from .procs import ManagedProcess, ProcessError, wait_until
from .wire import KafkaWire, WireError

TANSU_NODE_ID = 111

# SCRAM users the sasl_tansu fixture creates: mechanism -> (user, password, tansu's name for it).
SCRAM_USERS = {
    "SCRAM-SHA-256": ("alice", "alice-secret", "scram256"),
    "SCRAM-SHA-512": ("bob", "bob-secret", "scram512"),
}


class TansuBroker:
    """tansu listening on `port`, advertising `advertised_port` (its own port unless told).

    Restarting keeps the port; memory storage forgets every topic on restart.
    """

    def __init__(
        self,
        port: int,
        workdir: Path,
        advertised_port: int | None = None,
        storage: str = "memory://tansu/",
        binary: Path | None = None,
        authentication: bool = False,
        name: str = "tansu",
    ):
        self.port = port
        self.advertised_port = advertised_port or port
        self.binary = Path(binary or tansu_binary())
        self.workdir = Path(workdir)
        self.storage = storage
        self.authentication = authentication
        self.name = name
        self.process = ManagedProcess(name, self._argv(), self.workdir / f"{name}.log", cwd=self.workdir)

    def _argv(self) -> list[str]:
        argv = [
            str(self.binary),
            "broker",
            "--listener-url", f"tcp://{HOST}:{self.port}",
            "--advertised-listener-url", f"tcp://{HOST}:{self.advertised_port}",
            "--storage-engine", self.storage,
        ]
        if self.authentication:
            argv.append("--authentication")
        return argv

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    def start(self, timeout: float = 15.0) -> "TansuBroker":
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process.argv = self._argv()
        self.process.start()
        self.process.wait_ready(HOST, self.port, timeout)
        self.wait_answering(timeout)
        return self

    def wait_answering(self, timeout: float) -> None:
        """Wait until an ApiVersions request is answered (listening is not enough)."""

        def answered():
            try:
                with KafkaWire(HOST, self.port, timeout=1.0) as w:
                    return w.api_versions(0).error_code == 0
            except WireError:
                return False

        try:
            wait_until(answered, timeout, interval=0.1, what=f"{self.name} to answer ApiVersions")
        except TimeoutError as e:
            raise ProcessError(f"{e}\n--- {self.name} log ---\n{self.process.log_tail()}") from None

    def stop(self) -> None:
        self.process.stop()

    def kill(self) -> None:
        self.process.kill()

    def restart(self, timeout: float = 15.0) -> None:
        self.stop()
        self.start(timeout)

    def create_topic(self, topic: str, partitions: int = 1, timeout: float = 15.0) -> None:
        """Create a topic with tansu's own CLI, straight at the broker."""
        subprocess.run(
            [str(self.binary), "topic", "create", topic, "--partitions", str(partitions),
             "--broker", f"tcp://{HOST}:{self.port}"],
            check=True, capture_output=True, timeout=timeout, cwd=self.workdir,
        )

    def create_user(self, user: str, password: str, mechanism: str, timeout: float = 15.0) -> None:
        """Create a SCRAM user through the broker (sqlite build; run while authentication is off)."""
        subprocess.run(
            [str(self.binary), "user", "create", user, password, "--mechanism", mechanism,
             "--broker", f"tcp://{HOST}:{self.port}"],
            check=True, capture_output=True, timeout=timeout, cwd=self.workdir,
        )
