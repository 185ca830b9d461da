"""Journey 2 with the official SDK (issue 25 items 1-3, decision 25; static tier): what the e2e trace
stage sends with langfuse 3.x reaches Langfuse through its OTLP endpoint and ingestion, is followed
stage by stage (accepted, S3 object, worker, read back) and reads back exactly; the SDK reaches no
other host, leaves no thread and no secret behind; a newer major's score batch is refused.

Stand-in: lfharness.testing.langfuse_fake.LangfuseFake, a local HTTP server speaking Langfuse 3.150's
OTLP/HTTP route, ingestion and score endpoints, with the worker's asynchronous delay
(set_ingestion_lag). The SDK is the real one (langfuse==3.15.0, pinned in pyproject.toml): its
base URL handling, Basic auth, OTLP protobuf export, batching and score consumer all run here.
"""

from __future__ import annotations

import base64
import importlib
import importlib.metadata
import json
import logging
import os
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import langfuse  # send_with_sdk takes its client class from this module at each call
import pytest

from lfharness.stack import langfuse_api
from lfharness.testing import langfuse_fake
from lfharness.testing.langfuse_fake import LangfuseFake

pytestmark = pytest.mark.static

LOG = logging.getLogger("lfharness.tests.langfuse_sdk")
LAG = 3.0  # the worker's delay the stand-in plays: longer than an SDK session (about 2 s), so it can be seen
FOLLOW = {"timeout": 10.0, "interval": 0.2}  # every stage of follow_sdk_trace waits at most 10 s here


def _keys() -> tuple[str, str]:
    # A fresh public key per SDK session: langfuse 3.x keeps one resource manager per key and process.
    return "pk-lf-" + uuid.uuid4().hex, "sk-lf-" + secrets.token_hex(16)


def _otel_batches(fake: LangfuseFake):
    return lambda: fake.event_objects(f"{langfuse_fake.EVENT_PREFIX}otel/")


class Session:
    """One SDK session against a fresh stand-in: the keys, the stand-in, what was sent."""

    def __init__(self, fake: LangfuseFake, public_key: str, secret_key: str, sent: langfuse_api.SdkSent) -> None:
        self.fake, self.public_key, self.secret_key, self.sent = fake, public_key, secret_key, sent
        self.api = langfuse_api.Api(fake.base_url, public_key, secret_key, timeout=5)


@pytest.fixture(scope="module")
def session() -> Iterator[Session]:
    """The trace stage's journey once (about 3 s), shared by the read-back checks below."""
    public_key, secret_key = _keys()
    with LangfuseFake(public_key, secret_key) as fake:
        fake.set_ingestion_lag(LAG)
        sent = langfuse_api.send_with_sdk(fake.base_url, public_key, secret_key, "unit", flush_interval=0.2)
        yield Session(fake, public_key, secret_key, sent)


@pytest.fixture(scope="module")
def read_back(session) -> langfuse_api.SdkTrace:
    return langfuse_api.follow_sdk_trace(session.api, session.sent, _otel_batches(session.fake), **FOLLOW)


# --- what the SDK sends, and where -----------------------------------------------------------------

def _stored_spans(fake: LangfuseFake) -> dict[str, dict[str, Any]]:
    """The spans of the OTel batches the web stored, by name: their langfuse.observation.* attributes."""
    spans = {}
    for body in _otel_batches(fake)().values():
        for resource_span in json.loads(body):
            for scope_span in resource_span["scopeSpans"]:
                for span in scope_span["spans"]:
                    spans[span["name"]] = {a["key"].removeprefix("langfuse.observation."): a["value"]["stringValue"]
                                           for a in span.get("attributes", [])
                                           if a["key"].startswith("langfuse.observation.")}
    return spans


# First in the file on purpose: the module's SDK session runs in the fixture of the first test that asks
# for it, and the mutation benchmark maps send_with_sdk to that test only.
def test_the_stored_batch_holds_what_an_instrumented_agent_sends(session):
    """J2, decision 25: the OTel batch the web stored holds the agent's root span, a retrieval span with
    its input and output, and a generation with its model, usage and output, as the SDK typed them
    (local Langfuse API stand-in; read before the worker's delay)."""
    spans = _stored_spans(session.fake)
    # A fresh score id each session (Langfuse upserts scores by id) and the session's start time (the
    # e2e suite looks for the batch in S3 from that hour on).
    score = session.sent.written.scores[0]
    assert (uuid.UUID(score.id).version, 0 <= time.time() - session.sent.started < 120) == (4, True)
    assert spans == {
        "e2e-agent-unit": {"type": "span"},
        "e2e-retrieve-unit": {"type": "span", "input": json.dumps({"question": "what does the SDK send? unit"}),
                              "output": json.dumps({"documents": 2})},
        "e2e-answer-unit": {"type": "generation", "model.name": langfuse_api.EVALUATION_MODEL,
                            "usage_details": json.dumps({"input": 21, "output": 34, "total": 55}),
                            "output": "spans over OTLP, scores through ingestion"},
    }


def test_the_pinned_sdk_is_the_newest_3x_the_stack_documents(session):
    """Decision 25, issue 25 item 1: the SDK that ran is langfuse 3.15.0, inside SDK_RANGE (>=3.15,<4)
    (local Langfuse API stand-in)."""
    assert session.sent.sdk_version == importlib.metadata.version("langfuse") == "3.15.0"
    assert langfuse_api.SDK_RANGE == ">=3.15,<4"


def test_the_sdk_exports_its_spans_as_otlp_protobuf_with_the_project_keys(session):
    """Decision 25: the trace and its observations go to /api/public/otel/v1/traces as
    application/x-protobuf, authenticated with the project's key pair (local Langfuse API stand-in)."""
    exports = [r for r in session.fake.requests() if r.path == langfuse_api.OTEL_TRACES_PATH]
    assert exports, "the SDK exported no span"
    assert {(r.body.content_type, r.public_key) for r in exports} == {("application/x-protobuf", session.public_key)}


def test_the_sdk_sends_its_score_as_a_score_create_event_through_ingestion(session):
    """Decision 25: langfuse 3.x sends scores as score-create events to /api/public/ingestion, which
    3.150 serves (local Langfuse API stand-in)."""
    events = [e for r in session.fake.requests() if r.path == "/api/public/ingestion" for e in r.body["batch"]]
    [score] = session.sent.written.scores
    assert [(e["type"], e["body"]["id"], e["body"]["traceId"]) for e in events] == [
        ("score-create", score.id, session.sent.written.trace_id)]


def test_the_web_accepted_everything_the_sdk_sent(session):
    """Issue 25 item 1, stage "accepted by the web": neither the OTLP exporter nor the score client met a
    refusal (local Langfuse API stand-in)."""
    assert session.sent.problems == ()


# --- read back through the public API, after the worker's delay -------------------------------------

def test_the_sdk_trace_is_not_readable_before_the_workers_delay(session):
    """Issue 25 item 2: right after flush() the trace is accepted but not yet readable: the stand-in
    processes asynchronously, as 3.150's worker does (local Langfuse API stand-in, lag 3 s). Runs
    before the read-back tests (pytest keeps file order)."""
    elapsed = time.time() - session.sent.started
    if elapsed > LAG:  # the send itself took longer than the lag: nothing left to observe
        pytest.skip(f"the SDK session took {elapsed:.1f}s, longer than the {LAG}s lag")
    assert session.api.trace_exists(session.sent.written.trace_id) is False


def test_the_sdk_trace_reads_back_exactly_through_every_stage(session, read_back):
    """J2, issue 25 item 1: follow_sdk_trace passes accepted, S3 object, worker and read-back, and what
    reads back equals what was sent (local Langfuse API stand-in)."""
    assert read_back == session.sent.written, "; ".join(session.sent.written.differences(read_back))


def test_the_trace_holds_a_span_and_a_generation_nested_under_the_agents_root_span(session, read_back):
    """J2: three observations: the root span, and under it a span and a generation (types and
    parentObservationId as the SDK nested them) (local Langfuse API stand-in)."""
    by_name = {o.name.rsplit("-", 1)[0]: o for o in read_back.observations}
    root = by_name["e2e-agent"]
    assert {k: (o.type, o.parent_observation_id) for k, o in by_name.items()} == {
        "e2e-agent": ("SPAN", None), "e2e-retrieve": ("SPAN", root.id), "e2e-answer": ("GENERATION", root.id)}


def test_the_generation_reads_back_with_its_model_and_token_usage(read_back):
    """J2: the generation keeps model e2e-model and usage 21 + 34 = 55 tokens (local Langfuse API stand-in)."""
    [generation] = [o for o in read_back.observations if o.type == "GENERATION"]
    assert (generation.model, generation.usage) == (langfuse_api.EVALUATION_MODEL, langfuse_api.SDK_USAGE)


def test_the_score_reads_back_with_its_name_and_value_on_the_trace(session, read_back):
    """J2, J4: the numeric score e2e-correctness 0.875 reads back on the trace (local Langfuse API stand-in)."""
    assert [(s.name, s.value, s.data_type, s.trace_id) for s in read_back.scores] == [
        (langfuse_api.SDK_SCORE_NAME, 0.875, "NUMERIC", session.sent.written.trace_id)]


# --- the stages name themselves when one stops -------------------------------------------------------

def test_refused_keys_stop_the_journey_at_accepted_by_the_web(tmp_path):
    """Issue 25 "how it is checked": keys the server refuses are reported as not accepted (the SDK only
    logs them): both the exporter's 401 and the ingestion's 401 are named (local Langfuse API stand-in)."""
    public_key, secret_key = _keys()
    with LangfuseFake("pk-lf-someone-else", "sk-lf-" + secrets.token_hex(8)) as fake:
        sent = langfuse_api.send_with_sdk(fake.base_url, public_key, secret_key, "refused", flush_interval=0.2)
        api = langfuse_api.Api(fake.base_url, public_key, secret_key, timeout=5)
        with pytest.raises(langfuse_api.PipelineStopped) as stopped:
            langfuse_api.follow_sdk_trace(api, sent, _otel_batches(fake), **FOLLOW)
    assert stopped.value.stage == "accepted by the web"
    assert "401" in str(stopped.value) and "ingestion" in str(stopped.value) and "spans" in str(stopped.value)


def test_a_batch_missing_from_s3_stops_the_journey_at_the_s3_stage(session):
    """Issue 25 "how it is checked": no OTel batch holding the trace in S3 fails naming that stage
    (local Langfuse API stand-in; the bucket listing answers nothing)."""
    with pytest.raises(langfuse_api.PipelineStopped) as stopped:
        langfuse_api.follow_sdk_trace(session.api, session.sent, dict, timeout=0.3, interval=0.1)
    assert stopped.value.stage == "batch written to S3"


def test_a_trace_the_worker_has_not_processed_in_time_stops_at_the_worker_stage():
    """Issue 25 "how it is checked": a batch accepted and in S3 but not processed within the wait fails
    naming the worker (local Langfuse API stand-in with a 60 s lag, waits of 0.5 s)."""
    public_key, secret_key = _keys()
    with LangfuseFake(public_key, secret_key) as fake:
        fake.set_ingestion_lag(60)
        sent = langfuse_api.send_with_sdk(fake.base_url, public_key, secret_key, "slow", flush_interval=0.2)
        api = langfuse_api.Api(fake.base_url, public_key, secret_key, timeout=5)
        with pytest.raises(langfuse_api.PipelineStopped) as stopped:
            langfuse_api.follow_sdk_trace(api, sent, _otel_batches(fake), timeout=0.5, interval=0.1)
    assert stopped.value.stage == "processed by the worker"


# --- gzip, network, threads, secrets ---------------------------------------------------------------

def test_a_gzipped_sdk_export_reads_back_too(monkeypatch):
    """Issue 25 item 2: with OTEL_EXPORTER_OTLP_TRACES_COMPRESSION=gzip the exporter gzips its batches,
    and the stand-in unpacks them as 3.150 does (local Langfuse API stand-in)."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip")
    public_key, secret_key = _keys()
    with LangfuseFake(public_key, secret_key) as fake:
        sent = langfuse_api.send_with_sdk(fake.base_url, public_key, secret_key, "gzip", flush_interval=0.2)
        api = langfuse_api.Api(fake.base_url, public_key, secret_key, timeout=5)
        read = langfuse_api.follow_sdk_trace(api, sent, _otel_batches(fake), **FOLLOW)
        encodings = {r.body.content_encoding for r in fake.requests() if r.path == langfuse_api.OTEL_TRACES_PATH}
    assert (encodings, read) == ({"gzip"}, sent.written)


def test_a_session_logs_what_it_sent_and_leaves_no_log_handler_behind(caplog):
    """Decision 25, NFR4: the run log says which SDK version sent what; the handlers that collected the
    SDK's errors are removed again, so a later session's errors are not collected twice (local
    Langfuse API stand-in)."""
    handlers = {name: list(logging.getLogger(name).handlers) for name in ("langfuse", "opentelemetry")}
    caplog.set_level(logging.INFO, logger="lfharness.stack.langfuse_api")
    public_key, secret_key = _keys()
    with LangfuseFake(public_key, secret_key) as fake:
        sent = langfuse_api.send_with_sdk(fake.base_url, public_key, secret_key, "logged", flush_interval=0.2)
    assert f"sent with langfuse 3.15.0: {sent.written.describe()}" in caplog.messages
    assert {name: list(logging.getLogger(name).handlers) for name in handlers} == handlers


def test_the_sdk_connects_to_nothing_but_the_host_it_is_given(monkeypatch):
    """NFR (no internet from tests), decision 25: with LANGFUSE_HOST and LANGFUSE_BASE_URL pointing
    elsewhere, every connection and name lookup of the session goes to the stand-in's 127.0.0.1 port
    (socket.connect and getaddrinfo recorded; local Langfuse API stand-in)."""
    monkeypatch.setenv("LANGFUSE_HOST", "http://192.0.2.1:9")  # TEST-NET-1: never routed
    monkeypatch.setenv("LANGFUSE_BASE_URL", "http://192.0.2.1:9")
    contacted: list[Any] = []
    connect, lookup = socket.socket.connect, socket.getaddrinfo

    def recording_connect(sock: socket.socket, address: Any) -> Any:
        contacted.append(address)
        return connect(sock, address)

    def recording_lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        contacted.append(host)
        return lookup(host, *args, **kwargs)

    public_key, secret_key = _keys()
    with LangfuseFake(public_key, secret_key) as fake:
        port = int(fake.base_url.rsplit(":", 1)[1])
        monkeypatch.setattr(socket.socket, "connect", recording_connect)
        monkeypatch.setattr(socket, "getaddrinfo", recording_lookup)
        sent = langfuse_api.send_with_sdk(fake.base_url, public_key, secret_key, "network", flush_interval=0.2)
        monkeypatch.undo()
    LOG.info("the SDK session contacted %s", sorted(set(map(str, contacted))))
    assert sent.problems == ()
    assert contacted and {str(c) for c in contacted} <= {"127.0.0.1", str(("127.0.0.1", port))}


def test_a_proxy_set_in_the_environment_is_not_used(monkeypatch):
    """Decision 25: the port-forward is local; with HTTP(S)_PROXY and ALL_PROXY set in the shell (a
    corporate proxy), the session still connects to the stand-in's 127.0.0.1 port only, gets through,
    and leaves the environment as it found it (socket.connect recorded; the proxy is a TEST-NET-2
    address; before the fix the SDK's span exporter sent every span to the proxy)."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://198.51.100.1:3128")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    contacted: list[Any] = []
    connect = socket.socket.connect

    def recording_connect(sock: socket.socket, address: Any) -> Any:
        contacted.append(address)
        return connect(sock, address)

    public_key, secret_key = _keys()
    with LangfuseFake(public_key, secret_key) as fake:
        port = int(fake.base_url.rsplit(":", 1)[1])
        monkeypatch.setattr(socket.socket, "connect", recording_connect)
        sent = langfuse_api.send_with_sdk(fake.base_url, public_key, secret_key, "proxy", flush_interval=0.2,
                                          timeout=3)
        after = {name: os.environ.get(name) for name in ("NO_PROXY", "no_proxy")}
        monkeypatch.undo()
    assert (sent.problems, {str(c) for c in contacted}) == ((), {str(("127.0.0.1", port))})
    assert after == {"NO_PROXY": None, "no_proxy": None}  # the shell's settings are as they were


def test_no_sdk_thread_is_left_running_after_the_session():
    """Decision 25: shutdown() ends the SDK's consumers, the session's own tracer provider its export
    thread, and send_with_sdk the prompt cache's refresh thread (local Langfuse API stand-in)."""
    public_key, secret_key = _keys()
    before = set(threading.enumerate())
    with LangfuseFake(public_key, secret_key) as fake:
        langfuse_api.send_with_sdk(fake.base_url, public_key, secret_key, "threads", flush_interval=0.2)
        left = [t for t in threading.enumerate() if t not in before and t.is_alive()
                and (type(t).__module__.startswith(("langfuse", "opentelemetry")) or "Otel" in t.name)]
    assert left == []


def test_the_secret_key_never_appears_in_the_sdk_sessions_logs(caplog):
    """NFR1: at DEBUG level (the SDK's, its exporter's, httpx's and urllib3's loggers included) no log
    record of a session holds the secret key, or the Basic auth header made of it (local Langfuse API
    stand-in)."""
    public_key, secret_key = _keys()
    header = base64.b64encode(f"{public_key}:{secret_key}".encode()).decode()
    importlib.import_module("langfuse")  # it sets its loggers to WARNING on import: before caplog lowers them
    caplog.set_level(logging.DEBUG)
    for name in ("langfuse", "httpx", "httpcore", "urllib3", "opentelemetry"):
        caplog.set_level(logging.DEBUG, logger=name)
    with LangfuseFake(public_key, secret_key) as fake:
        langfuse_api.send_with_sdk(fake.base_url, public_key, secret_key, "secret", flush_interval=0.2)
    logged = "\n".join(f"{r.name}: {r.getMessage()}" for r in caplog.records)
    sources = {r.name.split(".")[0] for r in caplog.records}
    assert {"langfuse", "httpx", "urllib3"} <= sources, f"a logger stayed silent, the check would miss it: {sources}"
    assert secret_key not in logged and header not in logged


def test_a_second_session_with_the_same_public_key_is_refused_instead_of_sending_nothing(session):
    """Decision 25: langfuse 3.x would reuse the first session's shut-down exporter for the same key
    and drop everything silently; send_with_sdk refuses up front (local Langfuse API stand-in)."""
    with pytest.raises(langfuse_api.LangfuseApiError) as refused:
        langfuse_api.send_with_sdk(session.fake.base_url, session.public_key, session.secret_key, "again")
    assert str(refused.value) == (f"one SDK session per public key and process: {session.public_key} was used "
                                  "already (langfuse 3.x keeps its shut-down exporter for that key)")


def test_a_setting_that_disables_the_sdk_is_refused_up_front(monkeypatch):
    """Decision 25: LANGFUSE_TRACING_ENABLED=false would make the SDK send nothing without an error;
    send_with_sdk names it instead (no server needed)."""
    monkeypatch.setenv("LANGFUSE_TRACING_ENABLED", "false")
    public_key, secret_key = _keys()
    with pytest.raises(langfuse_api.LangfuseApiError) as refused:
        langfuse_api.send_with_sdk("http://127.0.0.1:9", public_key, secret_key, "disabled")
    assert str(refused.value) == "the SDK would not send to Langfuse: LANGFUSE_TRACING_ENABLED=false"


@pytest.mark.parametrize(("name", "value"), [("LANGFUSE_OTEL_TRACES_EXPORT_PATH", "/v1/traces"),
                                             ("OTEL_SDK_DISABLED", "TRUE")])
def test_a_setting_that_moves_or_disables_the_export_is_refused_up_front(monkeypatch, name, value):
    """Decision 25: an export path moved elsewhere, or OpenTelemetry disabled, would make the SDK's
    spans go nowhere Langfuse reads; send_with_sdk names the setting instead (no server needed)."""
    monkeypatch.setenv(name, value)
    public_key, secret_key = _keys()
    with pytest.raises(langfuse_api.LangfuseApiError, match=f"the SDK would not send to Langfuse: {name} is set"):
        langfuse_api.send_with_sdk("http://127.0.0.1:9", public_key, secret_key, "moved")


def test_opentelemetry_switched_on_in_so_many_words_is_not_named(monkeypatch):
    """Decision 25: OTEL_SDK_DISABLED=false leaves OpenTelemetry on (only "true" turns it off), so a
    refusal for another setting does not name it (no server needed)."""
    monkeypatch.setenv("OTEL_SDK_DISABLED", "false")
    monkeypatch.setenv("LANGFUSE_TRACING_ENABLED", "false")
    public_key, secret_key = _keys()
    with pytest.raises(langfuse_api.LangfuseApiError) as refused:
        langfuse_api.send_with_sdk("http://127.0.0.1:9", public_key, secret_key, "on")
    assert str(refused.value) == "the SDK would not send to Langfuse: LANGFUSE_TRACING_ENABLED=false"


def test_every_setting_that_would_stop_the_export_is_named_at_once(monkeypatch):
    """Decision 25: with two such settings, both are named in one refusal, so one fix is enough
    (no server needed)."""
    monkeypatch.setenv("LANGFUSE_OTEL_TRACES_EXPORT_PATH", "/v1/traces")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    public_key, secret_key = _keys()
    with pytest.raises(langfuse_api.LangfuseApiError) as refused:
        langfuse_api.send_with_sdk("http://127.0.0.1:9", public_key, secret_key, "moved")
    assert str(refused.value) == ("the SDK would not send to Langfuse: LANGFUSE_OTEL_TRACES_EXPORT_PATH is set; "
                                  "OTEL_SDK_DISABLED is set")


def test_a_score_the_server_rejects_is_a_problem_of_the_session(caplog):
    """J2, decision 25: the SDK drops a score Langfuse rejects (a 207 whose errors name it) without a
    word; the session reports the ingestion's answer instead (local Langfuse API stand-in rejecting
    the next score-create event)."""
    caplog.set_level(logging.INFO, logger="lfharness.stack.langfuse_api")
    public_key, secret_key = _keys()
    with LangfuseFake(public_key, secret_key) as fake:
        fake.reject_next_events(["score value invalid"], "score-create")
        sent = langfuse_api.send_with_sdk(fake.base_url, public_key, secret_key, "rejected", flush_interval=0.2)
    assert [p.split(": ", 1)[0] for p in sent.problems] == ["POST /api/public/ingestion answered 207"]
    assert (f"sent with langfuse 3.15.0: {sent.written.describe()}; problems: {sent.problems[0]}"
            in caplog.messages)
    assert "score value invalid" in sent.problems[0]


def test_a_score_upload_left_unanswered_ends_within_the_time_limit_as_a_problem_of_the_session():
    """J2, decision 25: when Langfuse never answers the score's upload (the connection held, then
    dropped, as by a port-forward whose pod went away), each of the SDK's three tries ends at the
    session's time limit, and the SDK's error is reported: no hung e2e run, no clean session (local
    Langfuse API stand-in holding the ingestion's connections 30 s unanswered; a 1 s limit)."""
    public_key, secret_key = _keys()
    with LangfuseFake(public_key, secret_key) as fake:
        fake.drop_next_ingestion(3, held=30)
        started = time.monotonic()
        sent = langfuse_api.send_with_sdk(fake.base_url, public_key, secret_key, "unanswered", timeout=1,
                                          flush_interval=0.2)
        took = time.monotonic() - started
        tries = [r for r in fake.requests() if r.path == "/api/public/ingestion"]
    assert (len(tries), [p.split(": ", 1)[0] for p in sent.problems], took < 15) == (3, ["langfuse"], True)


def test_each_refusal_the_sdk_logs_is_reported_once(caplog):
    """Decision 25, NFR4: the exporter's error for refused spans is one line of the session's problems,
    not one per logger it passes through, and the run log's line gives each problem once, apart
    (local Langfuse API stand-in refusing the keys)."""
    caplog.set_level(logging.INFO, logger="lfharness.stack.langfuse_api")
    public_key, secret_key = _keys()
    with LangfuseFake("pk-lf-someone-else", "sk-lf-" + secrets.token_hex(8)) as fake:
        sent = langfuse_api.send_with_sdk(fake.base_url, public_key, secret_key, "once", flush_interval=0.2)
    exporter = [p for p in sent.problems if p.startswith("opentelemetry.")]
    assert (len(exporter), len(set(sent.problems)) == len(sent.problems)) == (1, True)
    [logged] = [m for m in caplog.messages if m.startswith("sent with langfuse")]
    assert logged.split("; problems: ", 1)[1].split("; ") == list(sent.problems)


class _StuckSdkThread(threading.Thread):
    """A thread of the SDK (its class lives in a langfuse module) that ignores pause() until `release`."""

    __module__ = "langfuse._task_manager.stuck"

    def __init__(self, name: str, release: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self.paused_at: float | None = None  # time.monotonic() of the last pause()
        self.release = release

    def pause(self) -> None:
        self.paused_at = time.monotonic()

    def run(self) -> None:
        self.release.wait(30)


def test_sdk_threads_that_do_not_stop_are_named_after_one_bounded_wait(monkeypatch, caplog):
    """Decision 25: the session's end waits 5 s in all (not 5 s a thread) for SDK threads that ignore
    pause(), then names each with its class in one warning instead of hanging the e2e run (local
    Langfuse API stand-in; two threads of a langfuse module class, started while the session
    flushes, that wait for the test's release)."""
    release, stuck = threading.Event(), []

    class LangfuseWithStuckThreads(langfuse.Langfuse):
        def flush(self) -> None:
            stuck.extend(_StuckSdkThread(name, release) for name in ("stuck-scores", "stuck-media"))
            for thread in stuck:
                thread.start()
            super().flush()

    monkeypatch.setattr(langfuse, "Langfuse", LangfuseWithStuckThreads)
    caplog.set_level(logging.WARNING, logger="lfharness.stack.langfuse_api")
    public_key, secret_key = _keys()
    try:
        with LangfuseFake(public_key, secret_key) as fake:
            sent = langfuse_api.send_with_sdk(fake.base_url, public_key, secret_key, "stuck", flush_interval=0.2)
            returned = time.monotonic()
    finally:
        release.set()
    warnings = [r.getMessage() for r in caplog.records
                if r.levelno == logging.WARNING and r.name == "lfharness.stack.langfuse_api"]
    assert warnings == ["SDK threads still running after shutdown: stuck-scores (_StuckSdkThread), "
                        "stuck-media (_StuckSdkThread)"]
    # From the last pause() (the session's end) to its return: the one wait, whatever the threads.
    waited = returned - max(t.paused_at or returned for t in stuck)
    assert (sent.problems, 4.9 < waited < 5.8) == ((), True), f"waited {waited:.2f}s"


# --- a newer major: scores refused -------------------------------------------------------------------

def test_a_newer_sdks_score_array_is_refused_by_the_server(session):
    """Issue 25 item 3: what langfuse 5.x posts for scores (a JSON array on POST /api/public/scores) is
    refused with 400 by a server following 3.150's PostScoresBody: why SDK_RANGE stops before 4
    (local Langfuse API stand-in)."""
    response = session.api.post(langfuse_api.SCORES_PATH,
                                langfuse_api.newer_sdk_score_batch(session.sent.written.trace_id))
    assert (response.status_code, response.json()["message"]) == (400, "Invalid request data")


# --- where the e2e suite finds the batch in S3 ---------------------------------------------------------

def test_the_otel_batch_prefixes_cover_every_hour_of_the_send_in_utc():
    """Issue 25 item 1: the S3 listing looks under events/otel/<projectId>/<yyyy/mm/dd/hh>/ for each hour
    from a minute before the send to now (UTC, the web container's clock) (no server needed)."""
    since = time.mktime((2026, 12, 31, 23, 30, 0, 0, 0, 0)) - time.timezone
    prefixes = langfuse_api.otel_batch_prefixes("p1", since, since + 3600)
    assert prefixes == ["events/otel/p1/2026/12/31/23/", "events/otel/p1/2027/01/01/00/"]


def test_a_stored_otlp_json_batch_names_its_trace_ids_in_hex():
    """Issue 25 item 1: a batch stored from OTLP/JSON holds hex ids; otel_batch_trace_ids reads them as
    it reads protobuf's Buffers, and an object that is no batch holds none (no server needed)."""
    body = b'[{"scopeSpans": [{"spans": [{"traceId": "ABCDEF0123456789ABCDEF0123456789"}]}]}]'
    assert langfuse_api.otel_batch_trace_ids(body) == {"abcdef0123456789abcdef0123456789"}
    assert langfuse_api.otel_batch_trace_ids(b"not json") == set()
