"""A local stand-in for Langfuse's public API that records every request.

Serves the endpoints the e2e suite calls, with the response shapes of Langfuse's public API
(its OpenAPI definition): health; ingestion answering 207 {"successes", "errors"}; traces read
back by id (404 {"message": "Trace not found"} otherwise); v2 datasets, dataset items, v2 prompts.
Health touches the database only when asked (`?failIfDatabaseUnavailable=true`, as 3.150 does):
`set_database_available(False)` makes exactly that form answer 503.
`wipe("clickhouse")` / `wipe("postgres")` forget traces / datasets and prompts, as losing those
stores would; `reject_next_events(n, message)` makes ingestion refuse events inside a 207.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

from lfharness.testing import httpserver


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    public_key: str | None


@dataclass
class _State:
    public_key: str
    secret_key: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: list[Recorded] = field(default_factory=list)
    traces: dict[str, dict] = field(default_factory=dict)        # ClickHouse
    datasets: dict[str, dict] = field(default_factory=dict)      # PostgreSQL
    items: dict[str, dict] = field(default_factory=dict)         # PostgreSQL
    prompts: dict[str, list[dict]] = field(default_factory=dict)  # PostgreSQL
    reject: list[str] = field(default_factory=list)              # messages for the next rejected events
    database_available: bool = True


class _Handler(BaseHTTPRequestHandler):
    server: httpserver.Server  # its state is the fake's _State

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's signature)
        pass  # the requests are recorded instead

    def do_GET(self) -> None:  # http.server dispatches on do_<METHOD>
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _send(self, status: int, body: Any) -> None:
        httpserver.send_json(self, status, body)

    def _caller(self) -> str | None:
        scheme, _, encoded = (self.headers.get("Authorization") or "").partition(" ")
        if scheme != "Basic":
            return None
        user, _, password = base64.b64decode(encoded).decode().partition(":")
        state: _State = self.server.state
        return user if (user, password) == (state.public_key, state.secret_key) else None

    def _handle(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        state: _State = self.server.state
        caller = self._caller()
        with state.lock:
            state.requests.append(Recorded(self.command, url.path, parse_qs(url.query), body, caller))
        if url.path == "/api/public/health":
            # 3.150 runs SELECT 1 only with this parameter; without it the answer is 200 whatever the database.
            if parse_qs(url.query).get("failIfDatabaseUnavailable") == ["true"] and not state.database_available:
                return self._send(503, {"status": "Database not available", "version": "3.150.0"})
            return self._send(200, {"status": "OK", "version": "3.150.0"})
        if caller is None:
            return self._send(401, {"message": "Invalid credentials. Confirm that you've configured the correct host.",
                                    "error": "UnauthorizedError"})
        with state.lock:
            status, answer = self._route(state, self.command, unquote(url.path), parse_qs(url.query), body)
        self._send(status, answer)

    @staticmethod
    def _route(state: _State, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        now = "2026-01-01T00:00:00.000Z"
        not_found = {"message": "not found", "error": "LangfuseNotFoundError"}
        if (method, path) == ("POST", "/api/public/ingestion"):
            successes, errors = [], []
            for event in (body or {}).get("batch", []):
                if state.reject:
                    errors.append({"id": event.get("id"), "status": 400, "message": state.reject.pop(0),
                                   "error": [{"code": "invalid_type", "path": ["body"]}]})
                    continue
                if event.get("type") == "trace-create":
                    state.traces[event["body"]["id"]] = {**event["body"], "timestamp": event.get("timestamp")}
                successes.append({"id": event.get("id"), "status": 201})
            return 207, {"successes": successes, "errors": errors}
        if method == "GET" and (m := re.fullmatch(r"/api/public/traces/(.+)", path)):
            trace = state.traces.get(m.group(1))
            return (200, {**trace, "observations": [], "scores": []}) if trace else \
                (404, {"message": "Trace not found", "error": "LangfuseNotFoundError"})
        if (method, path) == ("POST", "/api/public/v2/datasets"):
            dataset = {"id": str(uuid.uuid4()), "name": body["name"], "description": body.get("description"),
                       "metadata": body.get("metadata"), "projectId": "langfuse-project", "createdAt": now,
                       "updatedAt": now}
            state.datasets[body["name"]] = dataset
            return 200, dataset
        if method == "GET" and (m := re.fullmatch(r"/api/public/v2/datasets/(.+)", path)):
            dataset = state.datasets.get(m.group(1))
            return (200, dataset) if dataset else (404, not_found)
        if (method, path) == ("POST", "/api/public/dataset-items"):
            dataset = state.datasets.get(body.get("datasetName"))
            if dataset is None:
                return 404, {"message": "Dataset not found", "error": "LangfuseNotFoundError"}
            item = {"id": body.get("id") or str(uuid.uuid4()), "status": "ACTIVE", "input": body.get("input"),
                    "expectedOutput": body.get("expectedOutput"), "metadata": body.get("metadata"),
                    "datasetId": dataset["id"], "datasetName": dataset["name"], "createdAt": now, "updatedAt": now}
            state.items[item["id"]] = item
            return 200, item
        if method == "GET" and (m := re.fullmatch(r"/api/public/dataset-items/(.+)", path)):
            item = state.items.get(m.group(1))
            return (200, item) if item else (404, not_found)
        if (method, path) == ("POST", "/api/public/v2/prompts"):
            versions = state.prompts.setdefault(body["name"], [])
            prompt = {"type": body.get("type", "text"), "name": body["name"], "prompt": body["prompt"],
                      "version": len(versions) + 1, "labels": body.get("labels") or [], "tags": [], "config": {}}
            versions.append(prompt)
            return 201, prompt
        if method == "GET" and (m := re.fullmatch(r"/api/public/v2/prompts/(.+)", path)):
            versions = state.prompts.get(m.group(1), [])
            wanted = query.get("version", [None])[0]
            found = [p for p in versions if wanted is not None and str(p["version"]) == wanted] or \
                [p for p in versions if wanted is None and "production" in p["labels"]]
            return (200, found[-1]) if found else (404, {"message": "Prompt not found", "error": "LangfuseNotFoundError"})
        return 404, not_found


class LangfuseFake:
    """Langfuse's public API on 127.0.0.1:<free port> for one project key pair."""

    def __init__(self, public_key: str, secret_key: str) -> None:
        self._state = _State(public_key, secret_key)
        self._server = httpserver.LocalServer(_Handler, self._state, name="langfuse-fake")

    @property
    def base_url(self) -> str:
        return self._server.url

    def requests(self) -> list[Recorded]:
        with self._state.lock:
            return list(self._state.requests)

    def wipe(self, store: str) -> None:
        """Forget what a lost store held: "clickhouse" (traces) or "postgres" (datasets, items, prompts)."""
        with self._state.lock:
            if store == "clickhouse":
                self._state.traces.clear()
            elif store == "postgres":
                self._state.datasets.clear()
                self._state.items.clear()
                self._state.prompts.clear()
            else:
                raise ValueError(f"unknown store {store!r}: clickhouse or postgres")

    def set_database_available(self, available: bool) -> None:
        """PostgreSQL reachable or not, as the health check with failIfDatabaseUnavailable=true sees it."""
        with self._state.lock:
            self._state.database_available = available

    def reject_next_events(self, messages: list[str]) -> None:
        """The next len(messages) ingestion events land in the 207's `errors` with these messages."""
        with self._state.lock:
            self._state.reject.extend(messages)

    def __enter__(self) -> Self:
        self._server.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.stop()
