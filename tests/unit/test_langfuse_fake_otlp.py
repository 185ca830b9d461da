"""The local Langfuse stand-in speaks the protocol Langfuse 3.150 speaks (issue 25 item 2, decision 25;
static tier): OTLP/HTTP on /api/public/otel/v1/traces with protobuf and JSON bodies (gzip too), the
3.150 score endpoints with their shapes, asynchronous processing, and the refusals 3.150 makes.

Stand-in: lfharness.testing.langfuse_fake.LangfuseFake, a local HTTP server following 3.150's
web/src/pages/api/public/otel/v1/traces/index.ts, packages/shared/src/server/otel/
OtelIngestionProcessor.ts and ObservationTypeMapper.ts, web/src/pages/api/public/scores/ and the
ingestion schema (packages/shared/src/server/ingestion/). The requests here are built by hand with
the OpenTelemetry protobuf classes (opentelemetry-proto), so every case the SDK never sends is
covered too; test_langfuse_sdk.py sends with the real SDK.
"""

from __future__ import annotations

import gzip
import json
import secrets
import time
import uuid
from collections.abc import Iterator

import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from lfharness.stack import langfuse_api
from lfharness.testing import langfuse_fake
from lfharness.testing.langfuse_fake import LangfuseFake

pytestmark = pytest.mark.static

PUBLIC_KEY = "pk-lf-" + "3" * 32
SECRET_KEY = "sk-lf-" + secrets.token_hex(16)
PROTOBUF = {"Content-Type": "application/x-protobuf"}
OTLP = langfuse_api.OTEL_TRACES_PATH
NOW_NS = time.time_ns()


@pytest.fixture
def fake() -> Iterator[LangfuseFake]:
    with LangfuseFake(PUBLIC_KEY, SECRET_KEY) as server:
        yield server


@pytest.fixture
def api(fake) -> langfuse_api.Api:
    return langfuse_api.Api(fake.base_url, PUBLIC_KEY, SECRET_KEY, timeout=5)


# --- building OTLP requests as an exporter does ----------------------------------------------------

def _attr(key: str, value: str | int | float | bool) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _span(trace_id: str, span_id: str, name: str, parent: str | None = None, start_ms: int = 0,
          **attributes: str | int | float | bool) -> Span:
    start = NOW_NS + start_ms * 1_000_000
    return Span(trace_id=bytes.fromhex(trace_id), span_id=bytes.fromhex(span_id),
                parent_span_id=bytes.fromhex(parent) if parent else b"", name=name, kind=Span.SPAN_KIND_INTERNAL,
                start_time_unix_nano=start, end_time_unix_nano=start + 50_000_000,
                attributes=[_attr(k.replace("__", "."), v) for k, v in attributes.items()])


def _request(*spans: Span, scope: str = "langfuse-sdk") -> bytes:
    """An ExportTraceServiceRequest with the resource and scope the Python SDK 3.x sets."""
    resource = Resource(attributes=[_attr("telemetry.sdk.language", "python"), _attr("service.name", "e2e")])
    scoped = ScopeSpans(scope=InstrumentationScope(name=scope, version="3.15.0",
                                                   attributes=[_attr("public_key", PUBLIC_KEY)]), spans=list(spans))
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(resource=resource, scope_spans=[scoped])]
                                     ).SerializeToString()


def _ids() -> tuple[str, str, str, str]:
    """A trace id (32 hex) and three span ids (16 hex)."""
    return uuid.uuid4().hex, secrets.token_hex(8), secrets.token_hex(8), secrets.token_hex(8)


def _post(fake: LangfuseFake, body: bytes, headers: dict[str, str], auth: tuple[str, str] | None = None
          ) -> requests.Response:
    return requests.post(f"{fake.base_url}{OTLP}", data=body, headers=headers, auth=auth or (PUBLIC_KEY, SECRET_KEY),
                         timeout=5)


def _agent_trace(fake: LangfuseFake) -> tuple[str, str, str, str]:
    """A root span with a trace name, a child span and a generation (model, usage) under it, in one batch."""
    trace_id, root, child, generation = _ids()
    body = _request(
        _span(trace_id, child, "retrieve", root, 10, langfuse__observation__type="span"),
        _span(trace_id, generation, "answer", root, 20, langfuse__observation__type="generation",
              langfuse__observation__model__name="e2e-model",
              langfuse__observation__usage_details=json.dumps({"input": 21, "output": 34})),
        _span(trace_id, root, "agent", None, 0, langfuse__observation__type="span", langfuse__trace__name="agent-trace"),
    )
    assert _post(fake, body, PROTOBUF).status_code == 200
    return trace_id, root, child, generation


# --- accepted: protobuf, JSON, gzip ---------------------------------------------------------------

def test_an_otlp_protobuf_batch_is_answered_with_the_queue_job_naming_its_s3_object(fake):
    """Decision 25, issue 25 item 2: POST /api/public/otel/v1/traces with an application/x-protobuf body
    answers 200 with the otel-ingestion-job whose fileKey is the object the batch was written to,
    events/otel/<projectId>/<yyyy/mm/dd/hh/mm>/<uuid>.json (local Langfuse API stand-in)."""
    trace_id, root, _, _ = _ids()
    response = _post(fake, _request(_span(trace_id, root, "agent")), PROTOBUF)
    job = response.json()
    file_key = job["data"]["payload"]["data"]["fileKey"]
    assert (response.status_code, job["name"]) == (200, "otel-ingestion-job")
    assert file_key.startswith(f"events/otel/{langfuse_fake.PROJECT_ID}/") and file_key in fake.event_objects()


def test_the_stored_batch_keeps_the_span_ids_as_protobufjs_buffers_the_s3_check_reads(fake):
    """Decision 25: the S3 object holds the resourceSpans as 3.150's web stores them (protobufjs
    toObject: ids as {"type": "Buffer", "data": [...]}), and otel_batch_trace_ids finds the trace in it,
    which is how the e2e suite recognises its batch in the real bucket (local Langfuse API stand-in)."""
    trace_id, root, _, _ = _ids()
    _post(fake, _request(_span(trace_id, root, "agent")), PROTOBUF)
    [body] = fake.event_objects("events/otel/").values()
    stored_id = json.loads(body)[0]["scopeSpans"][0]["spans"][0]["traceId"]
    assert (stored_id["type"], langfuse_api.otel_batch_trace_ids(body)) == ("Buffer", {trace_id})


def test_an_otlp_json_batch_reads_back_like_a_protobuf_one(fake, api):
    """Issue 25 item 2: an application/json OTLP body (hex ids, nanoseconds as strings) becomes the same
    trace and observation as protobuf would (local Langfuse API stand-in)."""
    trace_id, root, _, _ = _ids()
    body = {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"scope": {"name": "manual"}, "spans": [
        {"traceId": trace_id, "spanId": root, "name": "json-root", "kind": 1,
         "startTimeUnixNano": str(NOW_NS), "endTimeUnixNano": str(NOW_NS + 10**9),
         "attributes": [{"key": "langfuse.trace.name", "value": {"stringValue": "json-trace"}}]}]}]}]}
    assert _post(fake, json.dumps(body).encode(), {"Content-Type": "application/json"}).status_code == 200
    assert api.trace(trace_id)["name"] == "json-trace"
    assert [(o["id"], o["type"], o["name"]) for o in api.observations(trace_id)] == [(root, "SPAN", "json-root")]


def test_a_gzipped_otlp_batch_is_accepted(fake, api):
    """Issue 25 item 2: Content-Encoding gzip is unpacked before parsing, as 3.150 does (local Langfuse API stand-in)."""
    trace_id, root, _, _ = _ids()
    response = _post(fake, gzip.compress(_request(_span(trace_id, root, "zipped"))),
                     {**PROTOBUF, "Content-Encoding": "gzip"})
    assert (response.status_code, api.trace_exists(trace_id)) == (200, True)


def test_an_empty_otlp_batch_answers_200_and_stores_nothing(fake):
    """Issue 25 item 2: a request without resourceSpans answers 200 {} and writes no object, as 3.150's
    route returns early (local Langfuse API stand-in)."""
    response = _post(fake, ExportTraceServiceRequest().SerializeToString(), PROTOBUF)
    assert (response.status_code, response.json(), fake.event_objects("events/otel/")) == (200, {}, {})


# --- the worker's conversion ----------------------------------------------------------------------

def test_the_root_span_becomes_the_trace_named_by_langfuse_trace_name(fake, api):
    """Decision 25: the root span makes the full trace, named by langfuse.trace.name, at the root's
    start time (OtelIngestionProcessor.createTraceEvent; local Langfuse API stand-in)."""
    trace_id, *_ = _agent_trace(fake)
    trace = api.trace(trace_id)
    assert (trace["name"], trace["timestamp"]) == ("agent-trace", langfuse_fake._iso(NOW_NS // 1_000_000))


def test_every_span_becomes_an_observation_with_its_type_and_parent(fake, api):
    """Decision 25: each span is an observation whose type comes from langfuse.observation.type and whose
    parentObservationId is its parent span (local Langfuse API stand-in)."""
    trace_id, root, child, generation = _agent_trace(fake)
    got = {(o["id"], o["type"], o["parentObservationId"]) for o in api.observations(trace_id)}
    assert got == {(root, "SPAN", None), (child, "SPAN", root), (generation, "GENERATION", root)}


def test_a_generation_keeps_its_model_and_usage_with_the_total_added(fake, api):
    """Decision 25: langfuse.observation.model.name and usage_details become model and usageDetails; a
    missing total is the sum, as IngestionService.getUsageUnits adds it (local Langfuse API stand-in)."""
    trace_id, _, _, generation = _agent_trace(fake)
    [row] = [o for o in api.observations(trace_id) if o["id"] == generation]
    assert (row["model"], row["usageDetails"]) == ("e2e-model", {"input": 21, "output": 34, "total": 55})


def test_gen_ai_attributes_of_another_instrumentation_make_a_generation_with_usage(fake, api):
    """Issue 25 item 2: a span of another OpenTelemetry instrumentation with GenAI semantic conventions
    (gen_ai.operation.name chat, gen_ai.request.model, gen_ai.usage.*) is a GENERATION with its model and
    usage (ObservationTypeMapper priority 3; local Langfuse API stand-in)."""
    trace_id, root, _, _ = _ids()
    _post(fake, _request(_span(trace_id, root, "chat gpt", gen_ai__operation__name="chat",
                               gen_ai__request__model="gpt-x", gen_ai__usage__input_tokens=5,
                               gen_ai__usage__output_tokens=7), scope="opentelemetry.instrumentation.openai"),
          PROTOBUF)
    [row] = api.observations(trace_id)
    assert (row["type"], row["model"], row["usageDetails"]) == ("GENERATION", "gpt-x",
                                                                {"input": 5, "output": 7, "total": 12})


def test_a_child_span_before_its_root_makes_a_shallow_trace_whose_timestamp_stays(fake, api):
    """Decision 25: a child span of an unseen trace exported before its root makes a shallow trace
    (no name); the root's batch later names it, and the timestamp stays the first one (3.150:
    immutable once stored, IngestionService.mergeTraceRecords; local Langfuse API stand-in)."""
    trace_id, root, child, _ = _ids()
    _post(fake, _request(_span(trace_id, child, "early-child", root, 30)), PROTOBUF)
    shallow = api.trace(trace_id)
    _post(fake, _request(_span(trace_id, root, "late-root", None, 0, langfuse__trace__name="named-later")), PROTOBUF)
    full = api.trace(trace_id)
    assert (shallow["name"], full["name"]) == (None, "named-later")
    assert full["timestamp"] == shallow["timestamp"] == langfuse_fake._iso(NOW_NS // 1_000_000 + 30)


def test_a_full_trace_in_the_same_batch_drops_the_shallow_ones(fake):
    """Decision 25: children exported with their root in one batch add no shallow trace-create
    (filterRedundantShallowTraces): one trace event reaches processEventBatch's S3 folder (local
    Langfuse API stand-in)."""
    trace_id, *_ = _agent_trace(fake)
    [body] = fake.event_objects(f"events/{langfuse_fake.PROJECT_ID}/trace/{trace_id}/").values()
    assert [e["body"].get("name") for e in json.loads(body)] == ["agent-trace"]


# --- asynchronous, as the worker is -----------------------------------------------------------------

def test_an_otlp_trace_is_readable_only_after_the_workers_delay(fake, api):
    """Issue 25 item 2: with the worker's lag, the accepted batch is not readable at once; its
    observations after one lag and its trace after a second (the worker sends traces through
    processEventBatch again) (local Langfuse API stand-in, ingestion lag 0.5 s)."""
    fake.set_ingestion_lag(0.5)
    trace_id, *_ = _agent_trace(fake)
    at_once = (api.trace_exists(trace_id), len(api.observations(trace_id)))
    time.sleep(0.6)
    after_one = (api.trace_exists(trace_id), len(api.observations(trace_id)))
    time.sleep(0.6)
    after_two = (api.trace_exists(trace_id), len(api.observations(trace_id)))
    assert (at_once, after_one, after_two) == ((False, 0), (False, 3), (True, 3))


# --- refusals where 3.150 refuses ---------------------------------------------------------------------

@pytest.mark.parametrize("content_type", [None, "text/plain"])
def test_otlp_without_a_protobuf_or_json_content_type_is_refused(fake, content_type):
    """Issue 25 item 2: no content type, or another than application/x-protobuf or application/json,
    is a 400 "Invalid content type" (local Langfuse API stand-in)."""
    trace_id, root, _, _ = _ids()
    headers = {"Content-Type": content_type} if content_type else {}
    response = _post(fake, _request(_span(trace_id, root, "agent")), headers)
    assert (response.status_code, response.json()) == (400, {"error": "Invalid content type"})


def test_otlp_that_does_not_gunzip_is_refused(fake):
    """Issue 25 item 2: Content-Encoding gzip on a body that is not gzip is a 400 (local Langfuse API stand-in)."""
    response = _post(fake, b"not gzip at all", {**PROTOBUF, "Content-Encoding": "gzip"})
    assert (response.status_code, response.json()) == (400, {"error": "Failed to decompress request body"})


def test_otlp_protobuf_that_does_not_parse_is_refused(fake):
    """Issue 25 item 2: bytes that are no ExportTraceServiceRequest are a 400 (local Langfuse API stand-in)."""
    response = _post(fake, b"\xff\xff\xff\xff", PROTOBUF)
    assert (response.status_code, response.json()) == (400, {"error": "Failed to parse OTel Protobuf Trace"})


def test_otlp_json_that_does_not_parse_is_refused(fake):
    """Issue 25 item 2: an application/json body that is not JSON is a 400 (local Langfuse API stand-in)."""
    response = _post(fake, b"{not json", {"Content-Type": "application/json"})
    assert (response.status_code, response.json()) == (400, {"error": "Failed to parse OTel JSON Trace"})


@pytest.mark.parametrize(("auth", "message"), [
    (None, "No authorization header"),
    ("Basic " + "cGstbGYtd3Jvbmc6c2stbGYtd3Jvbmc=", "Invalid credentials. Confirm that you've configured the correct host."),
])
def test_otlp_without_the_project_keys_is_refused_401(fake, auth, message):
    """FR14, issue 25 item 2: no Authorization header, or keys that are not the project's, answer 401
    with 3.150's message and store nothing (local Langfuse API stand-in)."""
    trace_id, root, _, _ = _ids()
    headers = {**PROTOBUF, **({"Authorization": auth} if auth else {})}
    response = requests.post(f"{fake.base_url}{OTLP}", data=_request(_span(trace_id, root, "agent")),
                             headers=headers, timeout=5)
    assert (response.status_code, response.json(), fake.event_objects()) == (401, {"message": message}, {})


def test_a_protobuf_body_on_a_json_route_is_refused_not_dropped(fake):
    """Issue 25: a body that is not JSON on a JSON route is a 400 "Invalid JSON" (Next.js's body
    parser), not a dropped connection (local Langfuse API stand-in)."""
    response = requests.post(f"{fake.base_url}/api/public/ingestion", data=b"\x0a\x00\xff", headers=PROTOBUF,
                             auth=(PUBLIC_KEY, SECRET_KEY), timeout=5)
    assert (response.status_code, response.text) == (400, "Invalid JSON")


def _ingestion_event(**changes: object) -> dict:
    event = {"id": str(uuid.uuid4()), "type": "trace-create", "timestamp": langfuse_api.iso_timestamp(),
             "body": {"id": str(uuid.uuid4()), "name": "refused?"}}
    return {k: v for k, v in {**event, **changes}.items() if v is not None}


@pytest.mark.parametrize(("case", "event"), [
    ("unknown event type", _ingestion_event(type="trace-delete")),
    ("no id", _ingestion_event(id=None)),
    ("no timestamp", _ingestion_event(timestamp=None)),
    ("score for no trace, session or run", _ingestion_event(type="score-create", body={"name": "s", "value": 1})),
    ("score value of the wrong type", _ingestion_event(type="score-create", body={
        "name": "s", "value": "high", "dataType": "NUMERIC", "traceId": "t"})),
])
def test_ingestion_refuses_what_3150_refuses_inside_its_207(fake, case, event):
    """Issue 25 item 2: an event of an unknown type, without id or timestamp, or a score 3.150's
    ScoreBody refuses lands in the 207's errors with status 400 "Invalid request data", and nothing of
    it is stored (local Langfuse API stand-in)."""
    response = requests.post(f"{fake.base_url}/api/public/ingestion", json={"batch": [event]},
                             auth=(PUBLIC_KEY, SECRET_KEY), timeout=5)
    body = response.json()
    assert (response.status_code, body["successes"], [(e["status"], e["message"]) for e in body["errors"]]) == (
        207, [], [(400, "Invalid request data")]), case
    assert fake.event_objects() == {}


def test_ingestion_refuses_wrong_keys_with_401(fake):
    """FR14, issue 25 item 2: the ingestion route answers wrong keys with 401 and its
    UnauthorizedError shape (local Langfuse API stand-in)."""
    response = requests.post(f"{fake.base_url}/api/public/ingestion", json={"batch": [_ingestion_event()]},
                             auth=(PUBLIC_KEY, "sk-lf-wrong"), timeout=5)
    assert (response.status_code, response.json()["error"]) == (401, "UnauthorizedError")


def test_an_accepted_ingestion_event_is_stored_where_event_object_key_looks(fake, api):
    """FR9, issue 15 defect 8: the legacy path's raw event lands at
    events/<projectId>/trace/<traceId>/<eventId>.json, the key the e2e suite reads (local Langfuse API stand-in)."""
    trace_id = str(uuid.uuid4())
    event_id = api.ingest_trace(trace_id)
    key = langfuse_api.event_object_key(langfuse_fake.PROJECT_ID, trace_id, event_id)
    assert trace_id.encode() in fake.event_objects()[key]


# --- the score endpoints of 3.150 -----------------------------------------------------------------------

def test_a_score_array_on_the_scores_endpoint_is_refused_400(fake, api):
    """Issue 25 item 3: a JSON array of scores on POST /api/public/scores (what langfuse 5.x sends) is a
    400 "Invalid request data" (PostScoresBody is one object), and no score is stored (local Langfuse
    API stand-in)."""
    response = api.post(langfuse_api.SCORES_PATH, langfuse_api.newer_sdk_score_batch(str(uuid.uuid4())))
    body = response.json()
    assert (response.status_code, body["message"], body["error"][0]["expected"]) == (
        400, "Invalid request data", "object")
    assert fake.event_objects() == {}


def test_one_score_object_on_the_scores_endpoint_is_accepted_and_reads_back_after_the_delay(fake, api):
    """Issue 25 item 2: ONE score object on POST /api/public/scores answers 200 {"id"} and reads back
    through GET /api/public/scores/{id} once the worker wrote it (local Langfuse API stand-in, lag 0.3 s)."""
    fake.set_ingestion_lag(0.3)
    [score] = langfuse_api.newer_sdk_score_batch(str(uuid.uuid4()))
    score_id = api.create_score(score)
    status_at_once = requests.get(f"{fake.base_url}/api/public/scores/{score_id}", auth=(PUBLIC_KEY, SECRET_KEY),
                                  timeout=5).status_code
    time.sleep(0.4)
    read = requests.get(f"{fake.base_url}/api/public/scores/{score_id}", auth=(PUBLIC_KEY, SECRET_KEY), timeout=5)
    assert (score_id, status_at_once, read.status_code) == (score["id"], 404, 200)
    assert (read.json()["name"], read.json()["value"]) == (langfuse_api.SDK_SCORE_NAME, 0.875)


def test_a_score_on_no_trace_session_or_run_is_refused_by_the_scores_endpoint(api):
    """Issue 25 item 2: 3.150's refine wants exactly one of traceId, sessionId, datasetRunId (local
    Langfuse API stand-in)."""
    response = api.post(langfuse_api.SCORES_PATH, {"name": "orphan", "value": 1})
    assert (response.status_code, response.json()["error"][0]["code"]) == (400, "custom")


def test_the_v1_score_list_holds_trace_scores_with_their_trace(api):
    """Issue 25 item 2: GET /api/public/scores answers the v1 shape, each score with its trace's userId,
    tags and environment, paged (local Langfuse API stand-in)."""
    trace_id = str(uuid.uuid4())
    api.ingest_trace(trace_id)
    [score] = langfuse_api.newer_sdk_score_batch(trace_id)
    api.create_score(score)
    body = requests.get(f"{api.base_url}/api/public/scores", auth=(PUBLIC_KEY, SECRET_KEY), timeout=5).json()
    assert [(s["id"], s["trace"]["environment"]) for s in body["data"]] == [(score["id"], "default")]
    assert body["meta"]["totalItems"] == 1


def test_set_project_keys_makes_the_new_pair_the_only_one(fake):
    """FR14: headless initialization's key pair replaces the stand-in's first one (local Langfuse API stand-in)."""
    fake.set_project_keys("pk-lf-new", "sk-lf-" + secrets.token_hex(8))
    old = langfuse_api.Api(fake.base_url, PUBLIC_KEY, SECRET_KEY, timeout=5)
    assert old.get_trace("any").status_code == 401
