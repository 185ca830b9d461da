"""``LocalKube``: the local cluster with the stand-ins its port-forwards reach, as the kube tier's
session fixture (tests/unit/conftest.py) and the embedded e2e run use it.

A port-forward to a container port lands on a local program instead of a container: the Langfuse
API stand-in (langfuse_fake) for the web's 3000, Debian's redis-server for 6379 and ClickHouse's
/ping answer (standins.ClickHousePing) for 8123.
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from lfharness.testing import langfuse_fake, localsvc
from lfharness.testing.cluster.controlplane import LocalCluster
from lfharness.testing.cluster.kwok import Forwards
from lfharness.testing.cluster.standins import ClickHousePing

LANGFUSE_WEB_PORT, REDIS_PORT, CLICKHOUSE_HTTP_PORT = 3000, 6379, 8123


@dataclass
class LocalKube:
    """A LocalCluster whose port-forwards reach local stand-ins: the Langfuse API stand-in
    (langfuse_fake) for container port 3000, Debian's redis-server for 6379 and a ClickHouse
    /ping answer for 8123. `redis.password` starts random; `use_redis_password` sets the one the
    release's Secret holds (CONFIG SET requirepass), as the chart's Valkey would have it."""

    workdir: Path
    cluster: LocalCluster | None = None
    langfuse: langfuse_fake.LangfuseFake | None = None
    redis: localsvc.LocalRedis | None = None
    clickhouse: ClickHousePing | None = None
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def __enter__(self) -> Self:
        try:
            self.langfuse = self._stack.enter_context(
                langfuse_fake.LangfuseFake("pk-lf-kube-stand-in", "sk-lf-" + secrets.token_hex(8)))
            self.redis = self._stack.enter_context(localsvc.LocalRedis(self.workdir / "redis", secrets.token_hex(12)))
            self.clickhouse = self._stack.enter_context(ClickHousePing())
            langfuse_port = int(self.langfuse.base_url.rsplit(":", 1)[1])
            forwards = Forwards({LANGFUSE_WEB_PORT: ("127.0.0.1", langfuse_port),
                                 REDIS_PORT: ("127.0.0.1", self.redis.port),
                                 CLICKHOUSE_HTTP_PORT: ("127.0.0.1", self.clickhouse.port)})
            self.cluster = self._stack.enter_context(LocalCluster(self.workdir / "cluster", forwards))
        except BaseException:
            self._stack.close()
            raise
        return self

    def use_redis_password(self, password: str) -> None:
        # The redis client is needed only by the few tests that change the password.
        import redis  # noqa: PLC0415

        assert self.redis is not None, "LocalKube is not started"
        with redis.Redis(host="127.0.0.1", port=self.redis.port, password=self.redis.password,
                         socket_timeout=5) as client:
            client.config_set("requirepass", password)
        self.redis.password = password

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
