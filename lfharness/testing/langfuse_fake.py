"""A local stand-in for Langfuse's public API that records every request.

Serves the endpoints the e2e suite and the official Python SDK (langfuse 3.x) call, with the paths,
status codes and response shapes of Langfuse 3.150 (web/src/pages/api/public/ and the zod schemas in
web/src/features/public-api/types/, packages/shared/src/features/scores/ and
packages/shared/src/server/ingestion/types.ts):

- GET  /api/public/health: touches the database only with `?failIfDatabaseUnavailable=true`, as
  3.150 does; `set_database_available(False)` makes exactly that form answer 503.
- POST /api/public/otel/v1/traces (web/src/pages/api/public/otel/v1/traces/index.ts): OTLP/HTTP
  with an `application/x-protobuf` or `application/json` body, gzip when Content-Encoding says so.
  Refused as 3.150 refuses: a body that does not gunzip, no or another content type, protobuf or
  JSON that does not parse (400 {"error"}); wrong keys (401). An empty batch answers 200 {}. A
  batch is stored as the "S3 object" events/otel/<projectId>/<yyyy/mm/dd/hh/mm>/<uuid>.json
  (protobuf as protobufjs's toObject gives it: ids as Buffers, times as Longs) and answered with
  the queue job; the worker turns it into traces and observations later
  (worker/src/queues/otelIngestionQueue.ts, packages/shared/src/server/otel/
  OtelIngestionProcessor.ts processToIngestionEvents, ObservationTypeMapper.ts): a root span or
  one with trace attributes makes a full trace, another span of an unseen trace a shallow one
  (id, timestamp, environment; dropped when the batch holds the full one); each span an
  observation of the type its attributes map to (langfuse.observation.type, OpenInference,
  gen_ai.operation.name, GenAI tool, model-based, the Python SDK <= 3.3 override; else SPAN),
  with its name, parent, times, level, model, usage and cost details, input and output.
- POST /api/public/ingestion: 207 {"successes", "errors"}, validated event by event like
  processEventBatch (packages/shared/src/server/ingestion/processEventBatch.ts, types.ts): an
  event without id or timestamp, of an unknown type, with an invalid body (a score without
  exactly one of traceId / sessionId / datasetRunId, a value of the wrong type for its dataType),
  or a dataset-run-item-create (internal only) lands in `errors` with status 400 "Invalid request
  data", the others are accepted and stored as events/<projectId>/<entity>/<bodyId>/<eventId>.json.
  `drop_next_ingestion` closes the next requests' connections unanswered, as a port-forward does
  when its pod goes away.
- POST /api/public/scores (web/src/pages/api/public/scores/index.ts, PostScoresBody in
  packages/shared/src/features/scores/interfaces/api/shared.ts): ONE score object, answered 200
  {"id"}; anything else, a JSON array of scores included (what langfuse 5.x sends), is a 400
  {"message": "Invalid request data", "error": [zod issues]}. GET /api/public/scores (v1 list, trace
  scores only) and GET /api/public/scores/{id}, /api/public/v2/scores/{id} (404 "Score not found").
- GET  /api/public/traces/{id}: the trace with its observations and scores embedded, 404
  "Trace <id> not found within authorized project" otherwise.
- GET  /api/public/observations?traceId= (and type, name, parentObservationId), GET
  /api/public/v2/scores?traceId= (and name, dataType, scoreIds): paged {"data", "meta"}.
- POST /api/public/dataset-run-items: 404 "Dataset item not found" for an unknown (or archived)
  item; the run is created on first use; GET /api/public/datasets/{name}/runs/{run}: the run
  with its datasetRunItems.
- v2 datasets, dataset items, v2 prompts.

Every route but health wants Basic auth with the project's key pair: 401 {"message"} otherwise
("No authorization header", "Invalid credentials. Confirm that you've configured the correct
host."), with "error": "UnauthorizedError" on the ingestion route. `set_project_keys` swaps the
pair, as headless initialization creates it from LANGFUSE_INIT_PROJECT_PUBLIC_KEY / _SECRET_KEY.

Asynchronous as 3.150 is: what ingestion, the OTLP route, POST /scores and dataset-run-items
accept becomes readable `set_ingestion_lag` seconds later (0 by default), as the worker writes it
to ClickHouse after the web answered; an OTel batch's traces one lag after its observations (the
worker sends them through processEventBatch and the queue again).

Two stores, as in 3.150: ClickHouse holds traces, observations, scores and dataset run items;
PostgreSQL holds datasets, their items and runs, and prompts. `wipe("clickhouse")` /
`wipe("postgres")` forget what the lost store held (a run survives a ClickHouse loss without its
items); the event objects ("S3", `event_objects`) survive both. `reject_next_events(messages)`
makes ingestion refuse the next events inside a 207.

What it cannot prove: that the real web and worker run (no Next.js, BullMQ, Redis queue, S3 or
ClickHouse: dicts and a timer stand for them); the instrumentations it does not map
(Vercel AI SDK, pydantic-ai and LiteLLM usage, Logfire and the other input/output conventions:
only Langfuse's own langfuse.* attributes and the generic gen_ai.usage.* / llm.token_count.* are
read); ClickHouse's merge rules beyond "first timestamp and environment of a trace stay"; model
prices and tokenization (usage reads back as sent, total added when missing); the "seen traces"
set 3.150 keeps in Redis for ten minutes (here: for the stand-in's life); rate limits, ingestion
suspension, Bearer (public key only) auth, deletes, updates of datasets, the media endpoints; the
project id is always PROJECT_ID (headless initialization's LANGFUSE_INIT_PROJECT_ID is not taken over).
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import logging
import math
import re
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from lfharness.testing import httpserver

LOG = logging.getLogger("lfharness.testing.langfuse_fake")

PROJECT_ID = "langfuse-project"
VERSION = "3.150.0"
EVENT_PREFIX = "events/"  # LANGFUSE_S3_EVENT_UPLOAD_PREFIX as 03-app's values set it (s3.eventUpload.prefix)
OTEL_TRACES_PATH = "/api/public/otel/v1/traces"


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
    # S3: the raw events and OTel batches the web writes before it queues them (key -> JSON bytes)
    objects: dict[str, bytes] = field(default_factory=dict)
    # Redis: the traces the OTel processor has seen (3.150 keeps them ten minutes), so a later span
    # of a known trace makes no shallow trace
    seen_traces: set[str] = field(default_factory=set)
    # The ingestion queue (Redis) the worker empties into ClickHouse: (due, write)
    queue: list[tuple[float, Callable[[], None]]] = field(default_factory=list)
    ingestion_lag: float = 0.0
    # (message, event type or None for any) for the next rejected events
    reject: list[tuple[str, str | None]] = field(default_factory=list)
    # the next POST /api/public/ingestion requests that get no answer: the seconds each connection is
    # held open before it is closed
    drop_ingestion: list[float] = field(default_factory=list)
    database_available: bool = True

    def enqueue(self, write: Callable[[], None]) -> None:
        self.queue.append((time.monotonic() + self.ingestion_lag, write))

    def run_worker(self) -> None:
        """Applies every queued write that is due, in the order accepted (the worker's ClickHouse
        writes), and what those writes queue in turn while it is due (an OTel batch's traces go
        through processEventBatch: one more hop, one more lag)."""
        while True:
            now = time.monotonic()
            due, self.queue = [w for t, w in self.queue if t <= now], [(t, w) for t, w in self.queue if t > now]
            if not due:
                return
            for write in due:
                write()


def _iso(milliseconds: int) -> str:
    """JavaScript's Date#toISOString: UTC, milliseconds, Z."""
    moment = datetime.fromtimestamp(milliseconds // 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{milliseconds % 1000:03d}Z"


def _now() -> str:
    return _iso(int(time.time() * 1000))


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
SCORE_DATA_TYPES = ("NUMERIC", "CATEGORICAL", "BOOLEAN", "CORRECTION")
# PublicEnvironmentName: lower case letters, digits, - and _, at most 40, not starting with "langfuse".
ENVIRONMENT = re.compile(r"(?!langfuse)[a-z0-9_-]{1,40}")


def _entity(event_type: str) -> str:
    """getClickhouseEntityType (packages/shared/src/server/clickhouse/schemaUtils.ts): the S3 folder."""
    if event_type == "trace-create":
        return "trace"
    if event_type == "score-create":
        return "score"
    if event_type == "dataset-run-item-create":
        return "dataset_run_item"
    if event_type == "sdk-log":
        return "sdk_log"
    return "observation"


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


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _type_name(value: Any) -> str:
    # zod v4's "received" word for a JSON value.
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, list):
        return "array"
    if isinstance(value, (int, float)):
        return "number"
    return "string" if isinstance(value, str) else "object"


def _score_issues(body: Any, path: list[str]) -> list[dict]:
    """PostScoresBody (= the ingestion's ScoreBody): one object, a non-empty name, a value of the type
    its dataType wants, and exactly one of traceId (observationId only with it), sessionId, datasetRunId."""
    if not isinstance(body, dict):
        return [_issue("invalid_type", path, f"Invalid input: expected object, received {_type_name(body)}",
                       expected="object")]
    issues = []
    if not isinstance(body.get("name"), str) or not body["name"]:
        issues.append(_issue("too_small", [*path, "name"], "Too small: expected string to have >=1 characters",
                             minimum=1))
    data_type, value = body.get("dataType"), body.get("value")
    if data_type is not None and data_type not in SCORE_DATA_TYPES:
        return issues + [_issue("invalid_union", [*path, "dataType"], "Invalid input", errors=[],
                                note="No matching discriminator", discriminator="dataType")]
    if data_type in ("NUMERIC", "BOOLEAN") and not _is_number(value):
        issues.append(_issue("invalid_type", [*path, "value"], "Invalid input: expected number",
                             expected="number"))
    elif data_type == "BOOLEAN" and value not in (0, 1):
        issues.append(_issue("custom", [*path, "value"],
                             "Value must be a number equal to either 0 or 1 for data type BOOLEAN"))
    elif data_type in ("CATEGORICAL", "CORRECTION") and not isinstance(value, str):
        issues.append(_issue("invalid_type", [*path, "value"], "Invalid input: expected string",
                             expected="string"))
    elif data_type is None and not (_is_number(value) or isinstance(value, str)):
        issues.append(_issue("invalid_union", [*path, "value"], "Invalid input", errors=[]))
    if data_type == "CORRECTION" and body.get("configId") is not None:
        issues.append(_issue("invalid_type", [*path, "configId"], "Invalid input: expected undefined",
                             expected="undefined"))
    trace, session, run = (bool(body.get(k)) for k in ("traceId", "sessionId", "datasetRunId"))
    observation = bool(body.get("observationId"))
    if not ((trace and not session and not run) or (session and not trace and not run and not observation)
            or (run and not trace and not session and not observation)):
        issues.append(_issue("custom", [*path, "traceId", "sessionId", "datasetRunId", "observationId"],
                             "Provide exactly one of the following: traceId (with optional observationId), "
                             "sessionId or datasetRunId. ObservationId requires traceId."))
    return issues


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
    environment = body.get("environment")
    if environment is not None and (not isinstance(environment, str)
                                    or not ENVIRONMENT.fullmatch(environment.lower())):
        issues.append(_issue("invalid_format", ["body", "environment"], "Only alphanumeric lower case characters, "
                             "hyphens, and underscores are allowed and it must not start with 'langfuse'",
                             format="regex"))
    for key in ("usage", "usageDetails", "costDetails"):
        if body.get(key) is not None and not isinstance(body[key], dict):
            issues.append(_issue("invalid_type", ["body", key], "Invalid input: expected object", expected="object"))
    usage = body.get("usage")
    for key in ("input", "output", "total") if isinstance(usage, dict) else ():
        if usage.get(key) is not None and not _is_int(usage[key]):
            issues.append(_issue("invalid_type", ["body", "usage", key], "Invalid input: expected int",
                                 expected="int"))
    if kind == "score-create":
        issues += _score_issues(body, ["body"])
    return issues


# --- ClickHouse rows in the public API's shapes (APITrace, APIObservation, APIScoreSchemaV1/V2) ---------

def _trace_row(event: dict, old: dict | None) -> dict:
    body, now = event["body"], _now()
    row = old or {"id": body.get("id") or str(uuid.uuid4()), "externalId": None, "timestamp": None, "name": None,
                  "userId": None, "metadata": {}, "release": None, "version": None, "projectId": PROJECT_ID,
                  "environment": "default", "public": False, "bookmarked": False, "tags": [], "input": None,
                  "output": None, "sessionId": None, "createdAt": now, "updatedAt": now}
    fields = {k: body[k] for k in ("name", "userId", "metadata", "release", "version", "public", "tags", "input",
                                   "output", "sessionId") if body.get(k) is not None}
    if old is None and body.get("environment"):
        fields["environment"] = body["environment"]
    # IngestionService.mergeTraceRecords: id, timestamp and environment are immutable once stored
    # (a shallow trace from a child span fixes the timestamp before the root span's full trace).
    timestamp = row["timestamp"] or body.get("timestamp") or event["timestamp"]
    return {**row, **fields, "timestamp": timestamp, "updatedAt": now}


def _usage_details(body: dict) -> dict[str, int | float]:
    # IngestionService.getUsageUnits: the provided details (usage's input/output/total, then
    # usageDetails), non-numeric and negative values dropped; total = the sum of all when not given.
    usage = body.get("usage") or {}
    provided = {**{k: usage.get(k) for k in ("input", "output", "total")}, **(body.get("usageDetails") or {})}
    details = {k: v for k, v in provided.items() if _is_number(v) and v >= 0}
    if details and "total" not in details:
        details["total"] = sum(details.values())
    return details


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


def _process_event_batch(state: _State, batch: list[Any]) -> tuple[list[dict], list[dict]]:
    """processEventBatch: validates each event, writes the accepted ones to S3 grouped by entity and
    body id (events/<projectId>/<entity>/<bodyId>/<id of the group's first event>.json) and queues
    them for the worker. Returns (successes, errors) as aggregateBatchResult words them."""
    successes, errors, groups = [], [], {}
    for event in batch:
        event_id = event.get("id") if isinstance(event, dict) and isinstance(event.get("id"), str) else "unknown"
        kind = event.get("type") if isinstance(event, dict) else None
        if state.reject and state.reject[0][1] in (None, kind):
            errors.append({"id": event_id, "status": 400, "message": state.reject.pop(0)[0],
                           "error": json.dumps([_issue("invalid_type", ["body"], "Invalid input")], indent=2)})
            continue
        issues = _event_issues(event)
        if issues:
            # aggregateBatchResult: InvalidRequestError -> 400, its message the zod error's (issues as JSON).
            errors.append({"id": event_id, "status": 400, "message": "Invalid request data",
                           "error": json.dumps(issues, indent=2)})
            continue
        successes.append({"id": event_id, "status": 201})
        if event["type"] == "sdk-log":  # logged by Langfuse, stored nowhere
            continue
        body_id = (event.get("body") or {}).get("id")
        if body_id:
            groups.setdefault((_entity(event["type"]), body_id), []).append(event)
        state.enqueue(lambda event=event: _apply_event(state, event))
    for (entity, body_id), events in groups.items():
        key = f"{EVENT_PREFIX}{PROJECT_ID}/{entity}/{body_id}/{events[0]['id']}.json"
        state.objects[key] = json.dumps(events, separators=(",", ":")).encode()  # JSON.stringify
    return successes, errors


def _ingest(state: _State, body: Any) -> tuple[int, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("batch"), list):
        return 400, {"message": "Invalid request data", "errors": ["Invalid input: expected array, received undefined"]}
    successes, errors = _process_event_batch(state, body["batch"])
    return 207, {"successes": successes, "errors": errors}


# --- scores: web/src/pages/api/public/scores/index.ts, [scoreId].ts, v2/scores/[scoreId].ts ------------

def _create_score(state: _State, body: Any) -> tuple[int, Any]:
    """POST /api/public/scores: PostScoresBody is ONE score object (a JSON array, as langfuse 5.x
    sends, is refused by the schema before anything is stored); then a score-create through
    processEventBatch, its error answered with the event's status."""
    issues = _score_issues(body, [])
    if issues:
        return _invalid_request(issues)
    body = {**body, "id": body.get("id") or str(uuid.uuid4())}
    _, errors = _process_event_batch(state, [{"id": str(uuid.uuid4()), "type": "score-create",
                                              "timestamp": _now(), "body": body}])
    if errors:
        return errors[0]["status"], {"message": errors[0]["error"] or errors[0]["message"]}
    return 200, {"id": body["id"]}


def _v1_score(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in ("sessionId", "datasetRunId")}  # APIScoreSchemaV1


def _list_scores_v1(state: _State, query: dict[str, list[str]]) -> tuple[int, Any]:
    """GET /api/public/scores: trace scores only (filterAndValidateV1GetScoreList), newest first,
    each with its trace's userId, tags and environment."""
    rows = [r for r in _matching(list(state.scores.values()), query, {"name": "name", "dataType": "dataType"})
            if r["traceId"]]
    if query.get("scoreIds"):
        ids = {i.strip() for i in query["scoreIds"][0].split(",")}
        rows = [r for r in rows if r["id"] in ids]
    return _paged([{**_v1_score(r), "trace": _score_trace(state, r)}
                   for r in sorted(rows, key=lambda s: s["timestamp"], reverse=True)], query)


def _get_score(state: _State, score_id: str, v1: bool) -> tuple[int, Any]:
    row = state.scores.get(score_id)
    if row is None or (v1 and not row["traceId"]):
        return _not_found("Score not found")
    return 200, _v1_score(row) if v1 else row


def _score_trace(state: _State, row: dict) -> dict | None:
    trace = state.traces.get(row["traceId"] or "")
    return {"userId": trace["userId"], "tags": trace["tags"], "environment": trace["environment"]} if trace else None


# --- the worker's OTel conversion: packages/shared/src/server/otel/OtelIngestionProcessor.ts -----------

# ObservationTypeMapper.ts, by priority (the Vercel AI SDK mappers, 4 and 5, are left out).
OBSERVATION_TYPE_ATTRIBUTES: tuple[tuple[str, dict[str, str]], ...] = (
    ("langfuse.observation.type", {"span": "SPAN", "generation": "GENERATION", "event": "EVENT",
                                   "embedding": "EMBEDDING", "agent": "AGENT", "tool": "TOOL", "chain": "CHAIN",
                                   "retriever": "RETRIEVER", "guardrail": "GUARDRAIL", "evaluator": "EVALUATOR"}),
    ("openinference.span.kind", {"CHAIN": "CHAIN", "RETRIEVER": "RETRIEVER", "LLM": "GENERATION",
                                 "EMBEDDING": "EMBEDDING", "AGENT": "AGENT", "TOOL": "TOOL", "GUARDRAIL": "GUARDRAIL",
                                 "EVALUATOR": "EVALUATOR"}),
    ("gen_ai.operation.name", {"chat": "GENERATION", "completion": "GENERATION", "text_completion": "GENERATION",
                               "generate_content": "GENERATION", "generate": "GENERATION", "embeddings": "EMBEDDING",
                               "invoke_agent": "AGENT", "create_agent": "AGENT", "execute_tool": "TOOL"}),
)
GENERATION_ATTRIBUTES = ("langfuse.observation.model.name", "langfuse.observation.cost_details",
                         "langfuse.observation.usage_details", "langfuse.observation.completion_start_time",
                         "langfuse.observation.model.parameters", "langfuse.observation.prompt.name",
                         "langfuse.observation.prompt.version")
MODEL_ATTRIBUTES = ("langfuse.observation.model.name", "gen_ai.response.model", "ai.model.id", "gen_ai.request.model",
                    "llm.response.model", "llm.model_name", "model")
TRACE_UPDATE_ATTRIBUTES = ("langfuse.trace.name", "langfuse.trace.input", "langfuse.trace.output",
                           "langfuse.trace.metadata", "user.id", "session.id", "langfuse.trace.public",
                           "langfuse.trace.tags", "langfuse.user.id", "langfuse.session.id",
                           "langfuse.observation.metadata.langfuse_user_id",
                           "langfuse.observation.metadata.langfuse_session_id",
                           "langfuse.observation.metadata.langfuse_tags", "langfuse.trace.metadata.langfuse_session_id",
                           "langfuse.trace.metadata.langfuse_user_id", "langfuse.trace.metadata.langfuse_tags",
                           "ai.telemetry.metadata.sessionId", "ai.telemetry.metadata.userId",
                           "ai.telemetry.metadata.tags", "tag.tags")
USAGE_KEYS = {"prompt_tokens": "input", "completion_tokens": "output", "total_tokens": "total",
              "input_tokens": "input", "output_tokens": "output", "prompt": "input", "completion": "output"}
KNOWN_TYPES = {"SPAN", "EVENT", "GENERATION", "AGENT", "TOOL", "CHAIN", "RETRIEVER", "EVALUATOR", "EMBEDDING",
               "GUARDRAIL"}


def _meaningful(value: Any) -> bool:
    return value not in (None, "") and value != [] and value != {}


def _plain(value: Any) -> Any:
    """convertValueToPlainJavascript, quirks included: an intValue as the OTLP/JSON string form gives
    NaN there (null here); a Long's low half is taken as is when its high half is 0."""
    if not isinstance(value, dict):
        return json.dumps(value)
    if value.get("stringValue") is not None:
        return value["stringValue"]
    for key in ("doubleValue", "boolValue"):
        if value.get(key) is not None:
            return value[key]
    if isinstance(value.get("arrayValue"), dict) and value["arrayValue"].get("values") is not None:
        return [_plain(v) for v in value["arrayValue"]["values"]]
    number = value.get("intValue")
    if number:
        if isinstance(number, dict) and number.get("high") == 0:
            return number.get("low")
        if _is_number(number):
            return number
        if isinstance(number, dict) and number.get("high") == -1 and number.get("low") == -1:
            return -1
        if isinstance(number, dict) and _is_number(number.get("high")) and _is_number(number.get("low")):
            return number["high"] * 2 ** 32 + number["low"]
        return None  # NaN
    return json.dumps(value, separators=(",", ":"))


def _attributes(items: Any) -> dict[str, Any]:
    return {a["key"]: _plain(a.get("value") or {}) for a in items or [] if isinstance(a, dict) and "key" in a}


def _parse_id(value: Any) -> str:
    # parseId(x?.data ?? x): the JS SDK and OTLP/JSON send hex strings, protobuf gives Buffers.
    value = value.get("data", value) if isinstance(value, dict) else value
    return value if isinstance(value, str) else bytes(value).hex()


def _nanos_iso(value: Any) -> str:
    """convertNanoTimestampToISO: a string, a number or a Long {high, low} of nanoseconds."""
    if isinstance(value, str):
        return _iso(int(value) // 1_000_000)
    if _is_number(value):
        return _iso(int(value / 1_000_000))
    nanos = (int(value["high"]) << 32) | (int(value["low"]) & 0xFFFFFFFF)
    return _iso(nanos // 1_000_000)


def _json_or_raw(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _first(attributes: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if attributes.get(key):
            value = attributes[key]
            return value if isinstance(value, str) else json.dumps(value)
    return None


def _observation_type(attributes: dict[str, Any], resource: dict[str, Any], scope: dict) -> str:
    if (attributes.get("langfuse.observation.type") == "span" and scope.get("name") == "langfuse-sdk"
            and resource.get("telemetry.sdk.language") == "python"):
        # Priority 0: Python SDK <= 3.3.0 sent generations as spans with generation attributes.
        major, _, rest = str(scope.get("version") or "").partition(".")
        minor = rest.partition(".")[0]
        old = not (major.isdigit() and minor.isdigit()) or (int(major), int(minor)) <= (3, 3)
        if old and any(key in attributes for key in GENERATION_ATTRIBUTES):
            return "GENERATION"
    for key, mapping in OBSERVATION_TYPE_ATTRIBUTES:
        if _meaningful(attributes.get(key)) and mapping.get(attributes[key]) in KNOWN_TYPES:
            return mapping[attributes[key]]
    if _meaningful(attributes.get("gen_ai.tool.name")) or _meaningful(attributes.get("gen_ai.tool.call.id")):
        return "TOOL"
    if any(_meaningful(attributes.get(k)) for k in ("langfuse.observation.model.name", "gen_ai.request.model",
                                                     "gen_ai.response.model", "llm.model_name", "model")):
        return "GENERATION"
    return "SPAN"


def _name(span_name: str, attributes: dict[str, Any]) -> str:
    for key in ("gen_ai.tool.name", "logfire.msg"):
        if attributes.get(key):
            return attributes[key] if isinstance(attributes[key], str) else json.dumps(attributes[key])
    if "ai.toolCall.name" in attributes:
        return attributes["ai.toolCall.name"]
    if "ai.operationId" in attributes:
        prefix = f"{attributes['ai.telemetry.functionId']}:" if attributes.get("ai.telemetry.functionId") else ""
        return f"{prefix}{attributes['ai.operationId']}"
    return span_name


def _environment(attributes: dict[str, Any], resource: dict[str, Any]) -> str:
    for key in ("langfuse.environment", "deployment.environment.name", "deployment.environment"):
        if attributes.get(key):
            return attributes[key]
        if resource.get(key):
            return resource[key]
    return "default"


def _metadata(attributes: dict[str, Any], domain: str) -> dict[str, Any]:
    prefix = f"langfuse.{domain}.metadata"
    top = attributes.get(prefix) or attributes.get("langfuse.metadata")
    metadata = _json_or_raw(top) if top else {}
    metadata = metadata if isinstance(metadata, dict) else {}
    for key, value in attributes.items():
        for head in (prefix, "langfuse.metadata", "ai.telemetry.metadata"):
            if key.startswith(f"{head}.") and key not in ("ai.telemetry.metadata.userId",
                                                          "ai.telemetry.metadata.sessionId",
                                                          "ai.telemetry.metadata.tags",
                                                          "ai.telemetry.metadata.langfusePrompt"):
                metadata[key[len(head) + 1:]] = value
    return metadata


def _usage(attributes: dict[str, Any]) -> dict[str, Any]:
    given = _json_or_raw(attributes.get("langfuse.observation.usage_details"))
    if isinstance(given, dict):
        return given
    usage = {}
    for key, value in attributes.items():
        if (key.startswith("gen_ai.usage.") and key != "gen_ai.usage.cost") or key.startswith("llm.token_count"):
            short = key.replace("gen_ai.usage.", "").replace("llm.token_count.", "")
            try:
                usage[USAGE_KEYS.get(short, short)] = float(value) if "." in str(value) else int(value)
            except (TypeError, ValueError):
                continue  # Number(x) is NaN: skipped
    return usage


def _cost(attributes: dict[str, Any]) -> dict[str, Any]:
    given = _json_or_raw(attributes.get("langfuse.observation.cost_details"))
    if isinstance(given, dict):
        return given
    return {"total": attributes["gen_ai.usage.cost"]} if attributes.get("gen_ai.usage.cost") else {}


def _tags(attributes: dict[str, Any]) -> list[str]:
    value = next((attributes[k] for k in ("langfuse.trace.tags", "langfuse.tags",
                                          "langfuse.observation.metadata.langfuse_tags",
                                          "langfuse.trace.metadata.langfuse_tags", "ai.telemetry.metadata.tags",
                                          "tag.tags") if attributes.get(k)), None)
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, str):
        parsed = _json_or_raw(value) if value.strip().startswith("[") else None
        if isinstance(parsed, list):
            return [str(v) for v in parsed]
        return [v.strip() for v in value.split(",")] if "," in value else [value]
    return []


def _public(attributes: dict[str, Any]) -> bool | None:
    value = attributes.get("langfuse.trace.public", attributes.get("langfuse.public"))
    return None if value is None else value in (True, "true")


def _completion_start(attributes: dict[str, Any]) -> str | None:
    value = attributes.get("langfuse.observation.completion_start_time")
    for candidate in (value, _json_or_raw(value)):
        if isinstance(candidate, str) and _is_datetime(candidate):
            return candidate
    return None


def _has_trace_updates(attributes: dict[str, Any]) -> bool:
    return (any(attributes.get(k) for k in TRACE_UPDATE_ATTRIBUTES)
            or any(k.startswith("langfuse.trace.metadata") for k in attributes))


def _span_events(span: dict, scope: dict, resource: dict[str, Any], scope_attributes: dict[str, Any],
                 sdk: bool, seen: set[str]) -> list[dict]:
    """processSpan: a trace-create when the span is a root, carries trace attributes or belongs to an
    unseen trace (shallow), then the span's <type>-create."""
    attributes = _attributes(span.get("attributes"))
    litellm = scope.get("name") == "litellm"
    trace_id = attributes["langfuse.trace.id"] if litellm and attributes.get("langfuse.trace.id") \
        else _parse_id(span.get("traceId"))
    parent = _parse_id(span["parentSpanId"]) if span.get("parentSpanId") else None
    start, end = _nanos_iso(span.get("startTimeUnixNano")), _nanos_iso(span.get("endTimeUnixNano"))
    root = not parent or str(attributes.get("langfuse.internal.as_root")).lower() == "true"
    updates = _has_trace_updates(attributes)
    environment = _environment(attributes, resource)
    resource_metadata = _metadata(resource, "trace")
    scope_metadata = {**scope, "attributes": scope_attributes}
    events = []
    if root or updates or trace_id not in seen:
        trace: dict[str, Any] = {"id": trace_id, "timestamp": start, "environment": environment}
        if root or updates:
            trace.update({
                "name": attributes.get("langfuse.trace.name") or (_name(span.get("name") or "", attributes)
                                                                   if root else None),
                "metadata": {**resource_metadata, **_metadata(attributes, "trace"),
                             **(_metadata(attributes, "observation") if root else {}),
                             "resourceAttributes": resource, "scope": scope_metadata},
                "version": attributes.get("langfuse.version") or resource.get("service.version"),
                "release": attributes.get("langfuse.release") or resource.get("langfuse.release"),
                "userId": _first(attributes, ("langfuse.user.id", "user.id",
                                              "langfuse.observation.metadata.langfuse_user_id",
                                              "langfuse.trace.metadata.langfuse_user_id")),
                "sessionId": _first(attributes, ("langfuse.session.id", "session.id", "gen_ai.conversation.id",
                                                 "langfuse.observation.metadata.langfuse_session_id",
                                                 "langfuse.trace.metadata.langfuse_session_id")),
                "public": _public(attributes), "tags": _tags(attributes),
                "input": _json_or_raw(attributes.get("langfuse.trace.input")
                                      or (attributes.get("langfuse.observation.input") if root else None)),
                "output": _json_or_raw(attributes.get("langfuse.trace.output")
                                       or (attributes.get("langfuse.observation.output") if root else None)),
            })
        events.append({"id": str(uuid.uuid4()), "type": "trace-create", "timestamp": start, "body": trace})
        seen.add(trace_id)
    status = span.get("status") or {}
    kind = _observation_type(attributes, resource, scope)
    observation = {
        "id": _parse_id(span.get("spanId")), "traceId": trace_id, "parentObservationId": parent,
        "name": _name(span.get("name") or "", attributes), "startTime": start, "endTime": end,
        "environment": environment, "completionStartTime": _completion_start(attributes),
        "metadata": {**resource_metadata, **_metadata(attributes, "observation"),
                     **({} if sdk else {"attributes": {k: v if isinstance(v, str) else json.dumps(v)
                                                       for k, v in attributes.items()}}),
                     "resourceAttributes": resource, "scope": scope_metadata},
        "level": attributes.get("langfuse.observation.level") or ("ERROR" if status.get("code") == 2 else "DEFAULT"),
        "statusMessage": attributes.get("langfuse.observation.status_message") or status.get("message"),
        "version": attributes.get("langfuse.version") or resource.get("service.version"),
        "modelParameters": _json_or_raw(attributes.get("langfuse.observation.model.parameters")),
        "model": _first(attributes, MODEL_ATTRIBUTES),
        "promptName": attributes.get("langfuse.observation.prompt.name") or attributes.get("langfuse.prompt.name"),
        "promptVersion": attributes.get("langfuse.observation.prompt.version")
        or attributes.get("langfuse.prompt.version"),
        "usageDetails": _usage(attributes), "costDetails": _cost(attributes),
        "input": _json_or_raw(attributes.get("langfuse.observation.input")),
        "output": _json_or_raw(attributes.get("langfuse.observation.output")),
    }
    events.append({"id": str(uuid.uuid4()), "type": f"{kind.lower()}-create", "timestamp": _now(),
                   "body": observation})
    return events


def _shallow(trace: dict) -> bool:
    full = ("name", "metadata", "userId", "sessionId", "public", "tags", "version", "release", "input", "output")
    return not any(_meaningful(trace.get(k)) for k in full)


def _otel_events(resource_spans: Any, seen: set[str]) -> list[dict]:
    """processToIngestionEvents: every span's events, without the shallow trace-creates of a trace
    whose full trace-create is in the same batch (filterRedundantShallowTraces). A batch it cannot
    read yields nothing, as 3.150 logs the error and carries on."""
    if not isinstance(resource_spans, list):
        return []
    try:
        events = []
        for resource_span in filter(None, resource_spans):
            resource = _attributes((resource_span.get("resource") or {}).get("attributes"))
            for scope_span in resource_span.get("scopeSpans") or []:
                scope = scope_span.get("scope") or {}
                sdk = str(scope.get("name") or "").startswith("langfuse-sdk")
                scope_attributes = _attributes(scope.get("attributes"))
                for span in scope_span.get("spans") or []:
                    events += _span_events(span, scope, resource, scope_attributes, sdk, seen)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:  # what a malformed span raises here
        LOG.warning("an OTel batch the processor cannot read: %s", exc)
        return []
    full = {e["body"]["id"] for e in events if e["type"] == "trace-create" and not _shallow(e["body"])}
    return [e for e in events if not (e["type"] == "trace-create" and _shallow(e["body"]) and e["body"]["id"] in full)]


# --- OTLP/HTTP: web/src/pages/api/public/otel/v1/traces/index.ts ---------------------------------------


@dataclass(frozen=True)
class RawBody:
    """A body the route reads itself (Next's bodyParser off): the bytes as sent and the headers that
    say what they are."""

    data: bytes
    content_type: str
    content_encoding: str

    def __repr__(self) -> str:
        return f"RawBody({len(self.data)} bytes, {self.content_type!r}, {self.content_encoding!r})"


_LONG_SIGNED = {FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64}
_LONG_UNSIGNED = {FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64}


def _int32(value: int) -> int:
    return value - (1 << 32) if value >= 1 << 31 else value


def _js_value(field: FieldDescriptor, value: Any) -> Any:
    """One decoded field as protobufjs's toObject() leaves it and JSON.stringify then writes it to S3."""
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return _to_object(value)
    if field.type == FieldDescriptor.TYPE_BYTES:  # a Node Buffer
        return {"type": "Buffer", "data": list(value)}
    if field.type in _LONG_SIGNED or field.type in _LONG_UNSIGNED:  # a long.js Long: two signed 32-bit halves
        bits = value & ((1 << 64) - 1)
        return {"low": _int32(bits & 0xFFFFFFFF), "high": _int32(bits >> 32),
                "unsigned": field.type in _LONG_UNSIGNED}
    return value  # numbers (enums as numbers), booleans, strings


def _to_object(message: Message) -> dict:
    # Only the fields on the wire, named in camelCase: toObject() without options.
    return {field.json_name: [_js_value(field, v) for v in value] if field.is_repeated else _js_value(field, value)
            for field, value in message.ListFields()}


def _js_falsy(value: Any) -> bool:
    return value is None or value is False or value == 0 or value == ""


def _otel_traces(state: _State, raw: RawBody, public_key: str) -> tuple[int, Any]:
    """POST /api/public/otel/v1/traces, step by step as 3.150's route: gunzip, content type, parse,
    upload the resourceSpans to S3, queue the job for the worker, answer the job."""
    data = raw.data
    if "gzip" in raw.content_encoding:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            return 400, {"error": "Failed to decompress request body"}
    content_type = raw.content_type.lower()
    if not content_type or ("application/json" not in content_type and "application/x-protobuf" not in content_type):
        return 400, {"error": "Invalid content type"}
    resource_spans: Any = None
    if "application/x-protobuf" in content_type:
        try:
            request = ExportTraceServiceRequest()
            request.ParseFromString(data)
        except DecodeError:
            return 400, {"error": "Failed to parse OTel Protobuf Trace"}
        resource_spans = _to_object(request).get("resourceSpans")
    if "application/json" in content_type:
        try:
            parsed = json.loads(data)
            if parsed is None:  # JSON.parse("null").resourceSpans throws
                raise ValueError("null has no resourceSpans")
            resource_spans = parsed.get("resourceSpans") if isinstance(parsed, dict) else None
        except ValueError:  # also UnicodeDecodeError
            return 400, {"error": "Failed to parse OTel JSON Trace"}
    if _js_falsy(resource_spans) or resource_spans == []:
        return 200, {}
    # OtelIngestionProcessor.publishToOtelIngestionQueue: the batch to S3 under the minute it arrived
    # (the container's clock: UTC), then a job naming the file.
    minute = time.strftime("%Y/%m/%d/%H/%M", time.gmtime())
    file_key = f"{EVENT_PREFIX}otel/{PROJECT_ID}/{minute}/{uuid.uuid4()}.json"
    state.objects[file_key] = json.dumps(resource_spans, separators=(",", ":")).encode()
    state.enqueue(lambda: _otel_worker(state, file_key))
    job = {"id": str(uuid.uuid4()), "timestamp": _now(), "name": "otel-ingestion-job",
           "payload": {"data": {"fileKey": file_key, "publicKey": public_key},
                       "authCheck": {"validKey": True, "scope": {"projectId": PROJECT_ID, "accessLevel": "project"}}}}
    # The BullMQ Job the route returns, as JSON.stringify writes it (abridged).
    return 200, {"name": "otel-ingestion-job", "data": job, "opts": {"attempts": 5}, "id": str(len(state.objects)),
                 "progress": 0, "timestamp": int(time.time() * 1000), "attemptsMade": 0}


def _otel_worker(state: _State, file_key: str) -> None:
    """otelIngestionQueueProcessor: read the batch back from S3, convert it to ingestion events;
    observations are validated against the ingestion schema (invalid ones dropped with a warning)
    and written, traces (and anything else) go through processEventBatch."""
    events = _otel_events(json.loads(state.objects[file_key]), state.seen_traces)
    observations = [e for e in events if _entity(e["type"]) == "observation"]
    for event in observations:
        issues = _event_issues(event)
        if issues:
            LOG.warning("dropped an OTel observation of %s: %s", file_key, issues)
            continue
        _apply_event(state, event)
    others = [e for e in events if _entity(e["type"]) != "observation"]
    _, errors = _process_event_batch(state, others)
    for error in errors:
        LOG.warning("refused an OTel trace event of %s: %s", file_key, error)


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
    return _paged([{**row, "trace": _score_trace(state, row)}
                   for row in sorted(rows, key=lambda s: s["timestamp"], reverse=True)], query)


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
    ("POST", OTEL_TRACES_PATH, lambda s, g, q, b: _otel_traces(s, b, s.public_key)),
    ("POST", r"/api/public/scores", lambda s, g, q, b: _create_score(s, b)),
    ("GET", r"/api/public/scores", lambda s, g, q, b: _list_scores_v1(s, q)),
    ("GET", r"/api/public/scores/([^/]+)", lambda s, g, q, b: _get_score(s, g[0], v1=True)),
    ("GET", r"/api/public/traces/([^/]+)", lambda s, g, q, b: _get_trace(s, g[0])),
    ("GET", r"/api/public/observations", lambda s, g, q, b: _list_observations(s, q)),
    ("GET", r"/api/public/v2/scores", lambda s, g, q, b: _list_scores_v2(s, q)),
    ("GET", r"/api/public/v2/scores/([^/]+)", lambda s, g, q, b: _get_score(s, g[0], v1=False)),
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

    def _auth_error(self) -> str | None:
        """ApiAuthService.verifyAuthHeaderAndReturnScope's refusal for this request; None: the project's keys."""
        header = self.headers.get("Authorization")
        if not header:
            return "No authorization header"
        if not header.startswith("Basic "):
            return "Invalid authorization header"
        try:
            user, _, password = base64.b64decode(header[len("Basic "):], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user, password = "", ""
        state: _State = self.server.state
        if (user, password) != (state.public_key, state.secret_key):
            return "Invalid credentials. Confirm that you've configured the correct host."
        return None

    def _body(self, path: str) -> tuple[Any, bool]:
        """(the body, whether it parsed): raw for the OTLP route (its bodyParser is off), JSON otherwise."""
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        if path == OTEL_TRACES_PATH:
            return RawBody(data, self.headers.get("Content-Type") or "", self.headers.get("Content-Encoding") or ""), True
        try:
            return (json.loads(data) if data else None), True
        except ValueError:  # also UnicodeDecodeError
            return RawBody(data, self.headers.get("Content-Type") or "", self.headers.get("Content-Encoding") or ""), False

    def _handle(self) -> None:
        url = urlsplit(self.path)
        body, parsed = self._body(url.path)
        state: _State = self.server.state
        refused = self._auth_error()
        ingestion = self.command == "POST" and url.path == "/api/public/ingestion"
        with state.lock:
            caller = state.public_key if refused is None else None
            state.requests.append(Recorded(self.command, url.path, parse_qs(url.query), body, caller))
            held = state.drop_ingestion.pop(0) if ingestion and state.drop_ingestion else None
        if held is not None:  # as a port-forward does when its pod goes: the request read, no answer
            time.sleep(held)
            self.close_connection = True
            return None
        if not parsed:  # Next.js's body parser answers before any route runs
            return httpserver.send_bytes(self, 400, b"Invalid JSON", "text/plain")
        if url.path == "/api/public/health":
            # 3.150 runs SELECT 1 only with this parameter; without it the answer is 200 whatever the database.
            if parse_qs(url.query).get("failIfDatabaseUnavailable") == ["true"] and not state.database_available:
                return self._send(503, {"status": "Database not available", "version": VERSION})
            return self._send(200, {"status": "OK", "version": VERSION})
        if refused is not None:
            # ingestion.ts throws UnauthorizedError ({message, error}); createAuthedProjectAPIRoute answers {message}.
            extra = {"error": "UnauthorizedError"} if url.path == "/api/public/ingestion" else {}
            return self._send(401, {"message": refused, **extra})
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
    """Langfuse's public API on 127.0.0.1:<free port> for one project key pair (project PROJECT_ID)."""

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

    def set_project_keys(self, public_key: str, secret_key: str) -> None:
        """The project's key pair from now on, as Langfuse's headless initialization creates it from
        LANGFUSE_INIT_PROJECT_PUBLIC_KEY / LANGFUSE_INIT_PROJECT_SECRET_KEY; the previous pair is refused."""
        with self._state.lock:
            self._state.public_key, self._state.secret_key = public_key, secret_key

    def event_objects(self, prefix: str = EVENT_PREFIX) -> dict[str, bytes]:
        """The objects the web wrote to the event bucket ("S3") under `prefix`: raw ingestion events
        (events/<projectId>/<entity>/<bodyId>/<eventId>.json) and OTel batches
        (events/otel/<projectId>/<yyyy/mm/dd/hh/mm>/<uuid>.json), key -> JSON bytes."""
        with self._state.lock:
            return {k: v for k, v in self._state.objects.items() if k.startswith(prefix)}

    def set_database_available(self, available: bool) -> None:
        """PostgreSQL reachable or not, as the health check with failIfDatabaseUnavailable=true sees it."""
        with self._state.lock:
            self._state.database_available = available

    def set_ingestion_lag(self, seconds: float) -> None:
        """Events, OTel batches, scores and dataset run items accepted from now on become readable
        `seconds` later, as Langfuse's worker writes them to ClickHouse after the web answered (an
        OTel batch's observations after one lag, its traces after a second: the worker sends them
        through processEventBatch and the ingestion queue again)."""
        with self._state.lock:
            self._state.ingestion_lag = seconds

    def reject_next_events(self, messages: list[str], event_type: str | None = None) -> None:
        """The next len(messages) ingestion events (of `event_type` only, when given: e.g. the SDK's
        score-create, not the events the OTel batches become) land in the 207's `errors` with these messages."""
        with self._state.lock:
            self._state.reject.extend((message, event_type) for message in messages)

    def drop_next_ingestion(self, count: int, held: float = 0.0) -> None:
        """The next `count` POST /api/public/ingestion requests are read and recorded, then the
        connection is held open `held` seconds and closed without an answer, as a port-forward does
        when its pod goes away."""
        with self._state.lock:
            self._state.drop_ingestion.extend([held] * count)

    def __enter__(self) -> Self:
        self._server.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.stop()
