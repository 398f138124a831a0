"""A throwaway RabbitMQ node on loopback: its own node name, ports, data and Erlang cookie.

The machine's RabbitMQ (rabbit@localhost, 5672) is never touched: this node is started from
`/usr/lib/rabbitmq/bin/rabbitmq-server` in its own process group and temporary directory, killed
by its own process group, and started again on the same data (a crash: durable quorum queues
and confirmed messages survive) or on a wiped one (every message lost).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
from pathlib import Path

from kombu.connection import Connection

from chaos.services import free_port, wait_for

RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
START_TIMEOUT = 120.0  # a cold start takes 10-20 s on a busy 2-core machine


def available() -> bool:
    return RABBITMQ_SERVER.exists()


class RabbitServer:
    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir / "rabbitmq"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.dist_port = free_port()
        self.node = f"chaos{self.port}@localhost"
        self.proc: subprocess.Popen[bytes] | None = None
        cookie = self.workdir / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(secrets.token_hex(16))
            cookie.chmod(0o400)
        (self.workdir / "env.conf").write_text("")  # not the machine's rabbitmq-env.conf
        (self.workdir / "enabled_plugins").write_text("[].\n")  # no management listener
        (self.workdir / "rabbitmq.conf").write_text("loopback_users = none\n")

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def _env(self) -> dict[str, str]:
        d = self.workdir
        return {
            **os.environ,
            "HOME": str(d),  # the Erlang cookie
            "RABBITMQ_CONF_ENV_FILE": str(d / "env.conf"),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_LOG_BASE": str(d / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq"),
            "RABBITMQ_PID_FILE": str(d / "pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def start(self) -> None:
        log = (self.workdir.parent / "rabbitmq.log").open("ab")
        self.proc = subprocess.Popen(
            [str(RABBITMQ_SERVER)],
            cwd=self.workdir,
            env=self._env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(self.ping, START_TIMEOUT, f"rabbitmq {self.node} on {self.port}")

    def ping(self) -> bool:
        with Connection(self.url, connect_timeout=1) as conn:  # type: ignore[no-untyped-call]
            conn.ensure_connection(max_retries=1)
            return bool(conn.connected)

    def kill(self) -> None:
        """SIGKILL to the node's process group: the Erlang VM dies as in a crash."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def restart(self) -> None:
        self.kill()
        self.start()

    def restart_empty(self) -> None:
        """Killed, and its data directory lost with it: every queue and message is gone."""
        self.kill()
        shutil.rmtree(self.workdir / "mnesia", ignore_errors=True)
        self.start()

    def purge(self, queue: str) -> int:
        """Drop every ready message of `queue` (as FLUSHALL does on Redis)."""
        with Connection(self.url) as conn:  # type: ignore[no-untyped-call]
            return int(conn.channel().queue_purge(queue) or 0)

    def ready(self, queue: str) -> int:
        with Connection(self.url) as conn:  # type: ignore[no-untyped-call]
            _, ready, _consumers = conn.channel().queue_declare(queue, passive=True)
            return int(ready)

    def stop(self) -> None:
        self.kill()
