"""A local stand-in for Langfuse's public API that records every request.

Serves the endpoints the e2e suite calls, with the paths, status codes and response shapes of
Langfuse 3.150 (web/src/pages/api/public/ and the zod schemas in
web/src/features/public-api/types/ and packages/shared/src/features/scores/):

- GET  /api/public/health: touches the database only with `?failIfDatabaseUnavailable=true`, as
  3.150 does; `set_database_available(False)` makes exactly that form answer 503.
- POST /api/public/ingestion: 207 {"successes", "errors"}, validated event by event like
  processEventBatch (packages/shared/src/server/ingestion/processEventBatch.ts, types.ts): an
  event without id or timestamp, of an unknown type, with an invalid body, or a
  dataset-run-item-create (internal only) lands in `errors` with status 400 "Invalid request
  data", the others are accepted. Accepted events become readable after `set_ingestion_lag`
  seconds (0 by default), as the worker writes them to ClickHouse after the API accepted them.
- GET  /api/public/traces/{id}: the trace with its observations and scores embedded, 404
  "Trace <id> not found within authorized project" otherwise.
- GET  /api/public/observations?traceId= (and type, name, parentObservationId), GET
  /api/public/v2/scores?traceId= (and name, dataType, scoreIds): paged {"data", "meta"}.
- POST /api/public/dataset-run-items: 404 "Dataset item not found" for an unknown (or archived)
  item; the run is created on first use; GET /api/public/datasets/{name}/runs/{run}: the run
  with its datasetRunItems.
- v2 datasets, dataset items, v2 prompts.

Two stores, as in 3.150: ClickHouse holds traces, observations, scores and dataset run items;
PostgreSQL holds datasets, their items and runs, and prompts. `wipe("clickhouse")` /
`wipe("postgres")` forget what the lost store held (a run survives a ClickHouse loss without
its items). `reject_next_events(messages)` makes ingestion refuse the next events inside a 207.
Not served: OTLP (/api/public/otel), deletes, updates of datasets.
"""

from __future__ import annotations

import base64
import json
import math
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

from lfharness.testing import httpserver

PROJECT_ID = "langfuse-project"
VERSION = "3.150.0"


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
    # ClickHouse (decision 24: on the volume 02-deps owns)
    traces: dict[str, dict] = field(default_factory=dict)
    observations: dict[str, dict] = field(default_factory=dict)
    scores: dict[str, dict] = field(default_factory=dict)
    run_items: dict[str, dict] = field(default_factory=dict)
    # PostgreSQL
    datasets: dict[str, dict] = field(default_factory=dict)
    items: dict[str, dict] = field(default_factory=dict)
    runs: dict[tuple[str, str], dict] = field(default_factory=dict)  # (datasetId, name)
    prompts: dict[str, list[dict]] = field(default_factory=dict)
    # The ingestion queue (Redis) the worker empties into ClickHouse: (due, write)
    queue: list[tuple[float, Callable[[], None]]] = field(default_factory=list)
    ingestion_lag: float = 0.0
    reject: list[str] = field(default_factory=list)              # messages for the next rejected events
    database_available: bool = True

    def enqueue(self, write: Callable[[], None]) -> None:
        self.queue.append((time.monotonic() + self.ingestion_lag, write))

    def run_worker(self) -> None:
        """Applies every queued write that is due, in the order accepted (the worker's ClickHouse writes)."""
        now = time.monotonic()
        due, self.queue = [w for t, w in self.queue if t <= now], [(t, w) for t, w in self.queue if t > now]
        for write in due:
            write()


def _now() -> str:
    seconds = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int(seconds * 1000) % 1000:03d}Z"


def _not_found(message: str) -> tuple[int, dict]:
    return 404, {"message": message, "error": "LangfuseNotFoundError"}


def _invalid_request(issues: list[dict]) -> tuple[int, dict]:
    # withMiddlewares' answer to a zod error in a route's query or body.
    return 400, {"message": "Invalid request data", "error": issues}


# --- ingestion: validation as in 3.150's ingestion schema (packages/shared/src/server/ingestion/types.ts) ---

OBSERVATION_TYPES = {  # event type -> observation type; updates keep the type they were created with
    "span-create": "SPAN", "span-update": "SPAN", "generation-create": "GENERATION",
    "generation-update": "GENERATION", "event-create": "EVENT", "agent-create": "AGENT", "tool-create": "TOOL",
    "chain-create": "CHAIN", "retriever-create": "RETRIEVER", "evaluator-create": "EVALUATOR",
    "embedding-create": "EMBEDDING", "guardrail-create": "GUARDRAIL",
}
EVENT_TYPES = {"trace-create", "score-create", "sdk-log", "dataset-run-item-create", "observation-create",
               "observation-update", *OBSERVATION_TYPES}


def _issue(code: str, path: list[str], message: str, **extra: Any) -> dict:
    return {"code": code, **extra, "path": path, "message": message}


def _is_datetime(value: Any) -> bool:
    # z.string().datetime({ offset: true }): ISO 8601 with Z or an offset.
    if not isinstance(value, str) or not re.search(r"T.*(Z|[+-]\d{2}:?\d{2})$", value):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _event_issues(event: Any) -> list[dict]:
    """The zod issues 3.150's public ingestion schema finds in one event (the cheap part of it)."""
    if not isinstance(event, dict):
        return [_issue("invalid_type", [], "Invalid input: expected object", expected="object")]
    issues = []
    if not isinstance(event.get("id"), str) or not event["id"] or "\r" in event["id"]:
        issues.append(_issue("invalid_type", ["id"], "Invalid input: expected string", expected="string"))
    if not _is_datetime(event.get("timestamp")):
        issues.append(_issue("invalid_format", ["timestamp"], "Invalid ISO datetime", format="datetime"))
    kind = event.get("type")
    if kind not in EVENT_TYPES:
        return issues + [_issue("invalid_union", ["type"], "Invalid input", errors=[],
                                note="No matching discriminator", discriminator="type")]
    if kind == "dataset-run-item-create":  # public ingestion refuses it: only the dataset-run-items route may
        return issues + [_issue("custom", [], "Dataset run item creation is only allowed for internal usage")]
    body = event.get("body")
    if not isinstance(body, dict):
        return issues + [_issue("invalid_type", ["body"], "Invalid input: expected object", expected="object")]
    if kind in OBSERVATION_TYPES and (not isinstance(body.get("id"), str) or not body["id"]):
        issues.append(_issue("invalid_type", ["body", "id"], "Invalid input: expected string", expected="string"))
    for key in ("startTime", "endTime", "completionStartTime", "timestamp"):
        if body.get(key) is not None and not _is_datetime(body[key]):
            issues.append(_issue("invalid_format", ["body", key], "Invalid ISO datetime", format="datetime"))
    usage = body.get("usage")
    if usage is not None and not isinstance(usage, dict):
        issues.append(_issue("invalid_type", ["body", "usage"], "Invalid input: expected object", expected="object"))
    for key in ("input", "output", "total") if isinstance(usage, dict) else ():
        if usage.get(key) is not None and not _is_int(usage[key]):
            issues.append(_issue("invalid_type", ["body", "usage", key], "Invalid input: expected int",
                                 expected="int"))
    if kind == "score-create":
        if not isinstance(body.get("name"), str) or not body["name"]:
            issues.append(_issue("too_small", ["body", "name"], "Too small: expected string to have >=1 characters",
                                 minimum=1))
        numeric = body.get("dataType") in ("NUMERIC", "BOOLEAN")
        value = body.get("value")
        if numeric and (not isinstance(value, (int, float)) or isinstance(value, bool)):
            issues.append(_issue("invalid_type", ["body", "value"], "Invalid input: expected number",
                                 expected="number"))
        elif body.get("dataType") in ("CATEGORICAL", "CORRECTION") and not isinstance(value, str):
            issues.append(_issue("invalid_type", ["body", "value"], "Invalid input: expected string",
                                 expected="string"))
        elif body.get("dataType") is None and not isinstance(value, (int, float, str)):
            issues.append(_issue("invalid_union", ["body", "value"], "Invalid input", errors=[]))
    return issues


# --- ClickHouse rows in the public API's shapes (APITrace, APIObservation, APIScoreSchemaV1/V2) ---------

def _trace_row(event: dict, old: dict | None) -> dict:
    body, now = event["body"], _now()
    row = old or {"id": body.get("id") or str(uuid.uuid4()), "externalId": None, "timestamp": None, "name": None,
                  "userId": None, "metadata": {}, "release": None, "version": None, "projectId": PROJECT_ID,
                  "environment": "default", "public": False, "bookmarked": False, "tags": [], "input": None,
                  "output": None, "sessionId": None, "createdAt": now, "updatedAt": now}
    fields = {k: body[k] for k in ("name", "userId", "metadata", "release", "version", "public", "tags", "input",
                                   "output", "sessionId", "environment") if body.get(k) is not None}
    timestamp = body.get("timestamp") or row["timestamp"] or event["timestamp"]
    return {**row, **fields, "timestamp": timestamp, "updatedAt": now}


def _usage_details(body: dict) -> dict[str, int]:
    # IngestionService.mapObservationEventsToRecords: total = input + output when not given.
    usage = body.get("usage") or {}
    details = {k: usage[k] for k in ("input", "output", "total") if usage.get(k) is not None}
    if details and "total" not in details:
        details["total"] = sum(details.values())
    return {**details, **{k: v for k, v in (body.get("usageDetails") or {}).items() if v is not None}}


def _observation_row(event: dict, old: dict | None) -> dict:
    body, now = event["body"], _now()
    kind = OBSERVATION_TYPES.get(event["type"]) or body.get("type") or "SPAN"
    row = old or {"id": body["id"], "projectId": PROJECT_ID, "traceId": None, "parentObservationId": None,
                  "name": None, "type": kind, "environment": "default", "startTime": event["timestamp"],
                  "endTime": None, "version": None, "createdAt": now, "updatedAt": now, "input": None,
                  "output": None, "metadata": {}, "level": "DEFAULT", "statusMessage": None, "model": None,
                  "modelParameters": None, "completionStartTime": None, "promptId": None, "promptName": None,
                  "promptVersion": None, "usageDetails": {}, "costDetails": {}, "usagePricingTierName": None,
                  "usagePricingTierId": None, "modelId": None, "inputPrice": None, "outputPrice": None,
                  "totalPrice": None, "calculatedInputCost": None, "calculatedOutputCost": None,
                  "calculatedTotalCost": None, "latency": None, "timeToFirstToken": None}
    fields = {k: body[k] for k in ("traceId", "parentObservationId", "name", "startTime", "endTime", "version",
                                   "input", "output", "metadata", "level", "statusMessage", "model",
                                   "modelParameters", "completionStartTime", "environment")
              if body.get(k) is not None}
    details = _usage_details(body) or row["usageDetails"]
    usage = {"unit": "TOKENS", "input": details.get("input", 0), "output": details.get("output", 0),
             "total": details.get("total", 0)}
    return {**row, **fields, "usageDetails": details, "usage": usage, "unit": "TOKENS",
            "promptTokens": usage["input"], "completionTokens": usage["output"], "totalTokens": usage["total"],
            "updatedAt": now}


def _score_row(event: dict) -> dict:
    body, now = event["body"], _now()
    value = body["value"]
    data_type = body.get("dataType") or ("CATEGORICAL" if isinstance(value, str) else "NUMERIC")
    text = isinstance(value, str)
    return {"id": body.get("id") or str(uuid.uuid4()), "projectId": PROJECT_ID,
            "environment": body.get("environment") or "default", "name": body["name"],
            "value": 0 if text else value, "stringValue": value if text else None, "dataType": data_type,
            "source": body.get("source") or "API", "authorUserId": None, "comment": body.get("comment"),
            "metadata": body.get("metadata") or {}, "configId": body.get("configId"), "queueId": body.get("queueId"),
            "executionTraceId": body.get("executionTraceId"), "createdAt": now, "updatedAt": now,
            "timestamp": event["timestamp"], "traceId": body.get("traceId"),
            "observationId": body.get("observationId"), "sessionId": body.get("sessionId"),
            "datasetRunId": body.get("datasetRunId")}


def _apply_event(state: _State, event: dict) -> None:
    """The worker's effect of one accepted event on ClickHouse (an upsert by body id)."""
    kind, body = event["type"], event["body"]
    if kind == "trace-create":
        row = _trace_row(event, state.traces.get(body.get("id") or ""))
        state.traces[row["id"]] = row
    elif kind in OBSERVATION_TYPES or kind in ("observation-create", "observation-update"):
        if body.get("id"):
            state.observations[body["id"]] = _observation_row(event, state.observations.get(body["id"]))
    elif kind == "score-create":
        row = _score_row(event)
        state.scores[row["id"]] = row
    # sdk-log: logged by Langfuse, stored nowhere


def _ingest(state: _State, body: Any) -> tuple[int, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("batch"), list):
        return 400, {"message": "Invalid request data", "errors": ["Invalid input: expected array, received undefined"]}
    successes, errors = [], []
    for event in body["batch"]:
        event_id = event.get("id") if isinstance(event, dict) and isinstance(event.get("id"), str) else "unknown"
        if state.reject:
            errors.append({"id": event_id, "status": 400, "message": state.reject.pop(0),
                           "error": json.dumps([_issue("invalid_type", ["body"], "Invalid input")], indent=2)})
            continue
        issues = _event_issues(event)
        if issues:
            # aggregateBatchResult: InvalidRequestError -> 400, its message the zod error's (issues as JSON).
            errors.append({"id": event_id, "status": 400, "message": "Invalid request data",
                           "error": json.dumps(issues, indent=2)})
            continue
        state.enqueue(lambda event=event: _apply_event(state, event))
        successes.append({"id": event_id, "status": 201})
    return 207, {"successes": successes, "errors": errors}


# --- reads ---------------------------------------------------------------------------------------------

def _paged(rows: list[dict], query: dict[str, list[str]]) -> tuple[int, Any]:
    # publicApiPaginationZod: page > 0 (default 1), limit <= 100 (default 50).
    try:
        page, limit = int(query.get("page", ["1"])[0] or 1), int(query.get("limit", ["50"])[0] or 50)
    except ValueError:
        return _invalid_request([_issue("invalid_type", ["page"], "Invalid input: expected number")])
    if page < 1:
        return _invalid_request([_issue("too_small", ["page"], "Too small: expected number to be >0", minimum=0)])
    if limit > 100:
        return _invalid_request([_issue("too_big", ["limit"], "Too big: expected number to be <=100", maximum=100)])
    if limit < 1:  # 3.150 has no lower bound, and then divides by it: refused here rather than answered with NaN
        return _invalid_request([_issue("too_small", ["limit"], "Too small: expected number to be >0", minimum=0)])
    return 200, {"data": rows[(page - 1) * limit:page * limit],
                 "meta": {"page": page, "limit": limit, "totalItems": len(rows),
                          "totalPages": math.ceil(len(rows) / limit)}}


def _matching(rows: list[dict], query: dict[str, list[str]], filters: dict[str, str]) -> list[dict]:
    """Rows whose field equals each given query parameter (parameter -> field)."""
    wanted = {fld: query[param][0] for param, fld in filters.items() if query.get(param)}
    return [r for r in rows if all(r.get(fld) == value for fld, value in wanted.items())]


def _get_trace(state: _State, trace_id: str) -> tuple[int, Any]:
    trace = state.traces.get(trace_id)
    if trace is None:
        return _not_found(f"Trace {trace_id} not found within authorized project")
    observations = sorted((o for o in state.observations.values() if o["traceId"] == trace_id),
                          key=lambda o: o["startTime"])
    scores = [{k: v for k, v in s.items() if k not in ("sessionId", "datasetRunId")}  # APIScoreSchemaV1
              for s in state.scores.values() if s["traceId"] == trace_id]
    return 200, {**trace, "scores": scores, "observations": observations, "latency": 0,
                 "htmlPath": f"/project/{PROJECT_ID}/traces/{trace_id}", "totalCost": 0}


def _list_observations(state: _State, query: dict[str, list[str]]) -> tuple[int, Any]:
    rows = _matching(list(state.observations.values()), query,
                     {"traceId": "traceId", "type": "type", "name": "name", "parentObservationId": "parentObservationId"})
    return _paged(sorted(rows, key=lambda o: o["startTime"], reverse=True), query)


def _list_scores_v2(state: _State, query: dict[str, list[str]]) -> tuple[int, Any]:
    rows = _matching(list(state.scores.values()), query, {"traceId": "traceId", "name": "name", "dataType": "dataType"})
    if query.get("scoreIds"):
        ids = {i.strip() for i in query["scoreIds"][0].split(",")}
        rows = [r for r in rows if r["id"] in ids]
    with_trace = []
    for row in sorted(rows, key=lambda s: s["timestamp"], reverse=True):
        trace = state.traces.get(row["traceId"] or "")
        with_trace.append({**row, "trace": {"userId": trace["userId"], "tags": trace["tags"],
                                            "environment": trace["environment"]} if trace else None})
    return _paged(with_trace, query)


# --- datasets, their runs and run items ---------------------------------------------------------------

RUN_ITEM_BODY_KEYS = {"runName", "runDescription", "metadata", "datasetItemId", "observationId", "traceId"}


def _create_run_item(state: _State, body: Any) -> tuple[int, Any]:
    """web/src/pages/api/public/dataset-run-items.ts (POST) on PostDatasetRunItemsV1Body."""
    if not isinstance(body, dict):
        return _invalid_request([_issue("invalid_type", [], "Invalid input: expected object")])
    issues = [_issue("invalid_type", [key], "Invalid input: expected string", expected="string")
              for key in ("runName", "datasetItemId") if not isinstance(body.get(key), str)]
    unknown = sorted(set(body) - RUN_ITEM_BODY_KEYS)
    if unknown:  # .strict()
        issues.append(_issue("unrecognized_keys", [], f"Unrecognized key(s) in object: {', '.join(unknown)}",
                             keys=unknown))
    if not body.get("observationId") and not body.get("traceId"):
        issues.append(_issue("custom", ["observationId", "traceId"], "observationId or traceId must be provided"))
    if issues:
        return _invalid_request(issues)
    item = state.items.get(body["datasetItemId"])
    if item is None or item["status"] != "ACTIVE":
        return _not_found("Dataset item not found")
    trace_id = body.get("traceId")
    if not trace_id:  # historically run items were linked to observations: the trace is the observation's
        observation = state.observations.get(body["observationId"])
        if observation is None:
            return _not_found("Observation not found")
        trace_id = observation["traceId"]
        if not trace_id:
            return _not_found("Trace not found")
    now = _now()
    run = state.runs.setdefault((item["datasetId"], body["runName"]), {
        "id": str(uuid.uuid4()), "name": body["runName"], "description": body.get("runDescription"),
        "metadata": body.get("metadata") or {}, "datasetId": item["datasetId"], "createdAt": now, "updatedAt": now})
    run_item = {"id": str(uuid.uuid4()), "datasetRunId": run["id"], "datasetRunName": run["name"],
                "datasetItemId": item["id"], "traceId": trace_id, "observationId": body.get("observationId"),
                "createdAt": now, "updatedAt": now}
    # The route answers at once; the item reaches ClickHouse through the ingestion queue.
    state.enqueue(lambda: state.run_items.__setitem__(run_item["id"], {**run_item, "datasetId": item["datasetId"]}))
    return 200, run_item


def _get_run(state: _State, dataset_name: str, run_name: str) -> tuple[int, Any]:
    """web/src/pages/api/public/datasets/[name]/runs/[runName].ts (GET): the run from PostgreSQL, its
    items from ClickHouse, newest first."""
    dataset = state.datasets.get(dataset_name)
    run = state.runs.get((dataset["id"], run_name)) if dataset else None
    if run is None:
        return _not_found("Dataset run not found")
    items = sorted((i for i in state.run_items.values() if i["datasetRunId"] == run["id"]),
                   key=lambda i: i["createdAt"], reverse=True)
    return 200, {"datasetName": dataset_name, **run,
                 "datasetRunItems": [{k: v for k, v in i.items() if k != "datasetId"} for i in items]}


def _create_dataset(state: _State, body: Any) -> tuple[int, Any]:
    now = _now()
    dataset = {"id": str(uuid.uuid4()), "projectId": PROJECT_ID, "name": body["name"],
               "description": body.get("description"), "metadata": body.get("metadata"),
               "inputSchema": body.get("inputSchema"), "expectedOutputSchema": body.get("expectedOutputSchema"),
               "createdAt": now, "updatedAt": now}
    state.datasets[body["name"]] = dataset
    return 200, dataset


def _create_item(state: _State, body: Any) -> tuple[int, Any]:
    dataset = state.datasets.get(body.get("datasetName"))
    if dataset is None:
        return _not_found("Dataset not found")
    now = _now()
    item = {"id": body.get("id") or str(uuid.uuid4()), "status": body.get("status") or "ACTIVE",
            "input": body.get("input"), "expectedOutput": body.get("expectedOutput"), "metadata": body.get("metadata"),
            "sourceTraceId": body.get("sourceTraceId"), "sourceObservationId": body.get("sourceObservationId"),
            "datasetId": dataset["id"], "datasetName": dataset["name"], "createdAt": now, "updatedAt": now}
    state.items[item["id"]] = item
    return 200, item


def _create_prompt(state: _State, body: Any) -> tuple[int, Any]:
    versions = state.prompts.setdefault(body["name"], [])
    prompt = {"type": body.get("type", "text"), "name": body["name"], "prompt": body["prompt"],
              "version": len(versions) + 1, "labels": body.get("labels") or [], "tags": [], "config": {}}
    versions.append(prompt)
    return 201, prompt


def _get_prompt(state: _State, name: str, query: dict[str, list[str]]) -> tuple[int, Any]:
    versions = state.prompts.get(name, [])
    wanted = query.get("version", [None])[0]
    found = [p for p in versions if wanted is not None and str(p["version"]) == wanted] or \
        [p for p in versions if wanted is None and "production" in p["labels"]]
    return (200, found[-1]) if found else _not_found("Prompt not found")


def _found(row: dict | None) -> tuple[int, Any]:
    return (200, row) if row is not None else _not_found("not found")


# (method, path pattern, handler(state, path groups, query, body))
Route = tuple[str, str, Callable[[_State, tuple[str, ...], dict[str, list[str]], Any], tuple[int, Any]]]
ROUTES: list[Route] = [
    ("POST", r"/api/public/ingestion", lambda s, g, q, b: _ingest(s, b)),
    ("GET", r"/api/public/traces/([^/]+)", lambda s, g, q, b: _get_trace(s, g[0])),
    ("GET", r"/api/public/observations", lambda s, g, q, b: _list_observations(s, q)),
    ("GET", r"/api/public/v2/scores", lambda s, g, q, b: _list_scores_v2(s, q)),
    ("POST", r"/api/public/dataset-run-items", lambda s, g, q, b: _create_run_item(s, b)),
    ("GET", r"/api/public/datasets/([^/]+)/runs/([^/]+)", lambda s, g, q, b: _get_run(s, g[0], g[1])),
    ("POST", r"/api/public/v2/datasets", lambda s, g, q, b: _create_dataset(s, b)),
    ("GET", r"/api/public/v2/datasets/(.+)", lambda s, g, q, b: _found(s.datasets.get(g[0]))),
    ("POST", r"/api/public/dataset-items", lambda s, g, q, b: _create_item(s, b)),
    ("GET", r"/api/public/dataset-items/(.+)", lambda s, g, q, b: _found(s.items.get(g[0]))),
    ("POST", r"/api/public/v2/prompts", lambda s, g, q, b: _create_prompt(s, b)),
    ("GET", r"/api/public/v2/prompts/(.+)", lambda s, g, q, b: _get_prompt(s, g[0], q)),
]


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
                return self._send(503, {"status": "Database not available", "version": VERSION})
            return self._send(200, {"status": "OK", "version": VERSION})
        if caller is None:
            return self._send(401, {"message": "Invalid credentials. Confirm that you've configured the correct host.",
                                    "error": "UnauthorizedError"})
        with state.lock:
            state.run_worker()  # what the worker has written by now is readable
            status, answer = self._route(state, self.command, url.path, parse_qs(url.query), body)
            state.run_worker()  # without a lag, what this request queued is written before it answers
        self._send(status, answer)

    @staticmethod
    def _route(state: _State, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        for verb, pattern, handler in ROUTES:
            # Path segments are matched encoded, then decoded: a name may hold any character.
            if verb == method and (m := re.fullmatch(pattern, path)):
                return handler(state, tuple(unquote(g) for g in m.groups()), query, body)
        return _not_found("not found")


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
        """Forget what a lost store held: "clickhouse" (traces, observations, scores, dataset run items)
        or "postgres" (datasets, their items and runs, prompts). Events still queued are not ClickHouse's:
        they land after the wipe, as they would from Redis."""
        with self._state.lock:
            if store == "clickhouse":
                for table in (self._state.traces, self._state.observations, self._state.scores,
                              self._state.run_items):
                    table.clear()
            elif store == "postgres":
                for table in (self._state.datasets, self._state.items, self._state.runs, self._state.prompts):
                    table.clear()
            else:
                raise ValueError(f"unknown store {store!r}: clickhouse or postgres")

    def set_database_available(self, available: bool) -> None:
        """PostgreSQL reachable or not, as the health check with failIfDatabaseUnavailable=true sees it."""
        with self._state.lock:
            self._state.database_available = available

    def set_ingestion_lag(self, seconds: float) -> None:
        """Events (and dataset run items) accepted from now on become readable `seconds` later, as
        Langfuse's worker writes them to ClickHouse after the API answered."""
        with self._state.lock:
            self._state.ingestion_lag = seconds

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
