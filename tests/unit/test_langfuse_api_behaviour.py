"""The e2e suite's Langfuse client, behaviour by behaviour (issue 28's mutation score of
lfharness/stack/langfuse_api.py): what an operator reads when a call fails, what is sent on the
wire, and that no call waits forever.

Stand-ins: lfharness.testing.langfuse_fake.LangfuseFake (Langfuse 3.150's public API on a local
port, recording every request), a local HTTP server answering what an ingress or a broken Langfuse
answers (lfharness.testing.httpserver.LocalServer), and a listening socket that never answers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import os
import secrets
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler

import pytest
import requests

from lfharness.stack import langfuse_api
from lfharness.testing import httpserver
from lfharness.testing.langfuse_fake import LangfuseFake

pytestmark = pytest.mark.static

PUBLIC_KEY = "pk-lf-" + "2" * 32
SECRET_KEY = "sk-lf-" + secrets.token_hex(16)


@pytest.fixture
def fake() -> Iterator[LangfuseFake]:
    with LangfuseFake(PUBLIC_KEY, SECRET_KEY) as server:
        yield server


@pytest.fixture
def api(fake: LangfuseFake) -> langfuse_api.Api:
    return langfuse_api.Api(fake.base_url, PUBLIC_KEY, SECRET_KEY, timeout=5)


class _Canned(BaseHTTPRequestHandler):
    """Answers every request with the state's (status, content type, payload)."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's signature)
        pass

    def do_GET(self) -> None:
        status, content_type, payload = self.server.state  # type: ignore[attr-defined]
        httpserver.send_bytes(self, status, payload, content_type)

    def do_POST(self) -> None:  # http.server dispatches on do_<METHOD>
        self.do_GET()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers (a hung Langfuse or port-forward)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock.getsockname()[1]
    sock.close()


# --- what an operator reads when a call fails ------------------------------------------------------

CALLS = {
    "ingest trace": lambda api: api.ingest_trace("t-1"),
    "create score e2e-correctness": lambda api: api.create_score({"name": "e2e-correctness", "traceId": "t-1", "value": 1}),
    "create prompt": lambda api: api.create_prompt("p-1", "text"),
    "create dataset d-1": lambda api: api.create_dataset("d-1", "probe"),
    "create item i-1 in d-1": lambda api: api.create_dataset_item("d-1", "i-1", {"q": 1}, None),
    "read run r-1 of dataset d-1": lambda api: api.dataset_run("d-1", "r-1"),
    "read dataset d-1": lambda api: api.get_dataset("d-1"),
    "read dataset item i-1": lambda api: api.get_dataset_item("i-1"),
    "read prompt p-1 v3": lambda api: api.get_prompt("p-1", 3),
    "read trace t-1": lambda api: api.trace("t-1"),
    "list observations of trace t-1": lambda api: api.observations("t-1"),
    "list scores of trace t-1": lambda api: api.scores("t-1"),
    "link item i-1 to trace t-1 in run r-1": lambda api: api.create_dataset_run_item("r-1", "i-1", "t-1"),
    "ingest evaluation trace": lambda api: langfuse_api.write_evaluation(api, "r-1"),
}


@pytest.mark.parametrize("what", CALLS, ids=CALLS)
def test_a_refused_call_names_what_it_was_doing(fake, what):
    """FR14, NFR1: a refused call (wrong keys: 401) says which call of the e2e suite failed and the
    server's words, never the secret key (local Langfuse API stand-in)."""
    wrong = langfuse_api.Api(fake.base_url, PUBLIC_KEY, "sk-lf-" + secrets.token_hex(16), timeout=5)
    with pytest.raises(langfuse_api.LangfuseApiError) as err:
        CALLS[what](wrong)
    assert str(err.value).startswith(what) and "401" in str(err.value) and wrong.secret_key not in str(err.value)


ANSWERS = {
    "an ingress's text page": ("text/html", b"<" * 500 + b">" * 100),
    "a JSON string": ("application/json", b'"' + b"<" * 500 + b">" * 100 + b'"'),
    "a JSON message": ("application/json", b'{"message": "' + b"<" * 500 + b">" * 100 + b'"}'),
}


@pytest.mark.parametrize("answer", ANSWERS.values(), ids=ANSWERS)
def test_a_servers_answer_reaches_the_operator_cut_to_500_characters(answer):
    """NFR4 (errors say what and where): whatever form a failed answer takes, its first 500 characters
    are in the error and no more, so a long page cannot flood the log (a local server answering 502)."""
    content_type, payload = answer
    with httpserver.LocalServer(_Canned, (502, content_type, payload), name="langfuse-502") as server:
        api = langfuse_api.Api(server.url, PUBLIC_KEY, SECRET_KEY, timeout=5)
        with pytest.raises(langfuse_api.LangfuseApiError) as err:
            api.get_dataset("d-1")
    assert "<" * 500 in str(err.value) and ">" not in str(err.value)


def test_a_json_error_without_a_message_shows_its_error_field(fake):
    """NFR4: an answer {"error": ...} without a message shows the error's words, not the whole object
    (a local server answering 500 as Langfuse's error handler does)."""
    with httpserver.LocalServer(_Canned, (500, "application/json", b'{"error": "InternalServerError"}'),
                                name="langfuse-500") as server:
        with pytest.raises(langfuse_api.LangfuseApiError) as err:
            langfuse_api.Api(server.url, PUBLIC_KEY, SECRET_KEY, timeout=5).get_dataset("d-1")
    assert str(err.value).endswith(": InternalServerError")


def test_a_failed_trace_read_names_the_trace_its_status_and_the_servers_words():
    """NFR4: a trace read that is neither 200 nor 404 (ClickHouse down behind the web) is an error naming
    the trace, the status and the server's message, not an empty read (a local server answering 500)."""
    with httpserver.LocalServer(_Canned, (500, "application/json", b'{"message": "ClickHouse unavailable"}'),
                                name="langfuse-500") as server:
        with pytest.raises(langfuse_api.LangfuseApiError) as err:
            langfuse_api.Api(server.url, PUBLIC_KEY, SECRET_KEY, timeout=5).trace("t-1")
    assert str(err.value) == "read trace t-1: answered 500: ClickHouse unavailable"


def test_a_json_answer_that_is_no_object_is_shown_as_it_is():
    """NFR4: a JSON answer that is a list (a proxy's or another service's) is shown, not lost
    (a local server answering 503 with a JSON array)."""
    with httpserver.LocalServer(_Canned, (503, "application/json", b'["upstream overloaded"]'),
                                name="langfuse-503") as server:
        with pytest.raises(langfuse_api.LangfuseApiError, match="upstream overloaded"):
            langfuse_api.Api(server.url, PUBLIC_KEY, SECRET_KEY, timeout=5).get_dataset("d-1")


# --- no call waits forever ---------------------------------------------------------------------------

def test_the_health_check_gives_up_at_its_timeout_when_langfuse_never_answers(silent_port):
    """FR19, Journey 3: `up`'s health check of a Langfuse that accepts and never answers ends at its
    timeout instead of hanging the command (a listening socket that never answers)."""
    started = time.monotonic()
    with pytest.raises(requests.Timeout):
        langfuse_api.health(f"http://127.0.0.1:{silent_port}", timeout=0.5)
    assert time.monotonic() - started < 5


def test_an_unchecked_post_gives_up_at_the_clients_timeout(silent_port):
    """NFR4, decision 25: the refusal checks' raw POST uses the client's timeout too (a listening
    socket that never answers)."""
    api = langfuse_api.Api(f"http://127.0.0.1:{silent_port}", PUBLIC_KEY, SECRET_KEY, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(requests.Timeout):
        api.post(langfuse_api.SCORES_PATH, {})
    assert time.monotonic() - started < 5


READERS = {
    "a checked call": lambda api: api.get_dataset("d-1"),
    "a trace read": lambda api: api.trace("t-1"),
}


@pytest.mark.parametrize("read", READERS.values(), ids=READERS)
def test_a_read_gives_up_at_the_clients_timeout(silent_port, read):
    """NFR4, decision 24: every read of the e2e suite (the checked calls and the trace read the waits poll)
    ends at the client's timeout when Langfuse accepts and never answers (a listening socket that never
    answers)."""
    api = langfuse_api.Api(f"http://127.0.0.1:{silent_port}", PUBLIC_KEY, SECRET_KEY, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(requests.Timeout):
        read(api)
    assert time.monotonic() - started < 5


# --- what is sent --------------------------------------------------------------------------------------

def test_a_trace_reads_back_under_the_name_it_was_sent_with(api):
    """FR28, J2: ingest_trace sends the name it is given, and the trace reads back under it (local
    Langfuse API stand-in)."""
    trace_id, name = str(uuid.uuid4()), f"e2e-named-{secrets.token_hex(3)}"
    api.ingest_trace(trace_id, name)
    assert api.trace(trace_id)["name"] == name


def test_every_ingested_event_has_its_own_id(api, fake):
    """FR9, J4: two traces sent one after the other carry different event ids, so each has its own raw
    event object in S3 (event_object_key) and neither is taken for a retry of the other (local
    Langfuse API stand-in)."""
    first, second = api.ingest_trace(str(uuid.uuid4())), api.ingest_trace(str(uuid.uuid4()))
    batches = [langfuse_api.ingestion_batch(str(uuid.uuid4()))["batch"][0]["id"] for _ in range(2)]
    sent = [r.body["batch"][0]["id"] for r in fake.requests() if r.path == "/api/public/ingestion"]
    assert (sent, len({first, second, *batches})) == ([first, second], 4)


READS = {
    "dataset": lambda api, name: api.get_dataset(name),
    "dataset item": lambda api, name: api.get_dataset_item(name),
    "prompt": lambda api, name: api.get_prompt(name, 1),
    "run of a dataset": lambda api, name: api.dataset_run(name, "e2e-run"),
    "run": lambda api, name: api.dataset_run("e2e-eval", name),
    "trace": lambda api, name: api.trace(name),
}


@pytest.mark.parametrize("read", READS, ids=READS)
def test_a_name_with_a_slash_is_read_as_one_path_segment(api, fake, read):
    """FR28: a dataset, item, prompt or run name with a slash is sent percent-encoded (%2F), as Langfuse's
    routes take each name as one path segment (local Langfuse API stand-in, its recorded paths)."""
    with contextlib.suppress(langfuse_api.LangfuseApiError):  # nothing of that name exists: 404
        READS[read](api, "e2e/slash")
    assert "e2e%2Fslash" in fake.requests()[-1].path


def _spans(trace_id: str, count: int) -> tuple[langfuse_api.Observation, ...]:
    return tuple(langfuse_api.Observation(f"{trace_id}-o{n:03}", "SPAN", f"span-{n}", trace_id, None)
                 for n in range(count))


def test_a_trace_with_more_observations_than_a_page_reads_back_every_one(api):
    """FR28, decision 24: the observation list is paged (at most 100 a page); an agent's trace with 250
    observations reads back whole, each once, not just its first page (local Langfuse API stand-in)."""
    spans = _spans("t-many", 250)
    api.ingest(langfuse_api.evaluation_batch("t-many", "e2e-many", spans, ()), what="ingest 250 spans")
    assert sorted(o["id"] for o in api.observations("t-many")) == [o.id for o in spans]


def test_a_traces_observations_and_scores_are_its_own_only(api):
    """FR28: the observations and scores read for a trace are that trace's, not the project's other
    traces' (local Langfuse API stand-in, two traces in one project)."""
    for trace_id in ("t-mine", "t-other"):
        score = langfuse_api.Score(f"{trace_id}-s", "e2e-correctness", 1.0, "NUMERIC", trace_id)
        api.ingest(langfuse_api.evaluation_batch(trace_id, "e2e", _spans(trace_id, 1), (score,)), what=trace_id)
    assert ([o["id"] for o in api.observations("t-mine")], [s["id"] for s in api.scores("t-mine")]) == (
        ["t-mine-o000"], ["t-mine-s"])


def test_the_marker_prompt_is_a_text_prompt_without_any_label(api, fake):
    """FR28, issue 10 item 3: the marker prompt is created as type "text" with no label, so it never
    takes the "production" label an application's prompt is served by (local Langfuse API stand-in,
    its recorded request)."""
    api.create_prompt(f"e2e-prompt-{secrets.token_hex(3)}", "Answer {{question}}")
    [sent] = [r.body for r in fake.requests() if r.path == "/api/public/v2/prompts"]
    assert (sent["type"], sent["labels"]) == ("text", [])


def test_every_marker_names_the_run_that_wrote_it(api, fake):
    """FR28, issue 10 item 3: the marker item's input and the prompt's text carry the run id, so a
    marker another run left behind cannot read back as this run's (local Langfuse API stand-in)."""
    run_id = secrets.token_hex(4)
    markers = langfuse_api.write_markers(api, run_id)
    sent = {r.path: r.body for r in fake.requests() if r.method == "POST"}
    assert run_id in str(sent["/api/public/dataset-items"]["input"])
    assert run_id in sent["/api/public/v2/prompts"]["prompt"]
    assert api.get_prompt(markers.prompt, markers.prompt_version)["prompt"] == markers.prompt_text


# --- what a failed e2e check says --------------------------------------------------------------------

def _sdk_trace(name: str | None, observations: int = 1, scores: int = 1) -> langfuse_api.SdkTrace:
    obs = tuple(langfuse_api.Observation(f"o{n}", "SPAN", f"span-{n}", "t", None) for n in range(observations))
    return langfuse_api.SdkTrace("t", name, obs, tuple(
        langfuse_api.Score(f"s{n}", "e2e-correctness", 0.875, "NUMERIC", "t") for n in range(scores)))


def test_an_sdk_trace_not_read_back_names_the_trace_as_not_readable():
    """Decision 25, issue 25: the e2e failure for an SDK trace the worker never wrote says the trace is
    not readable and which observations and scores are missing (no server needed: SdkTrace values)."""
    sent, read = _sdk_trace("e2e-sdk"), _sdk_trace(None, observations=0, scores=0)
    assert sent.differences(read) == ["trace t: not readable", "observations: 0 read, 1 written; missing or changed: o0",
                                      "scores: 0 read, 1 written; missing or changed: s0"]


def test_an_sdk_trace_read_back_under_another_name_names_both_names():
    """Decision 25: a trace that reads back renamed says the name read and the name sent, and only
    that when nothing else differs (no server needed: SdkTrace values)."""
    assert _sdk_trace("e2e-sdk").differences(_sdk_trace("other")) == [
        "trace t: named 'other', sent 'e2e-sdk'"]
    assert _sdk_trace("e2e-sdk").differences(_sdk_trace("e2e-sdk")) == []


def test_rows_read_back_that_were_never_written_are_named_alone():
    """FR28: rows that read back without having been written are named as such, with no empty
    "missing" part (no server needed: SdkTrace values)."""
    assert _sdk_trace("e2e-sdk", observations=1).differences(_sdk_trace("e2e-sdk", observations=3)) == [
        "observations: 3 read, 1 written; not written: o1, o2"]


def test_an_evaluation_lost_in_part_names_each_kind_missing(api, fake):
    """FR28, decision 24: an evaluation whose ClickHouse rows are gone lists, per kind, what is missing,
    by the kind's name (local Langfuse API stand-in, its ClickHouse store wiped)."""
    written = langfuse_api.write_evaluation(api, secrets.token_hex(4))
    fake.wipe("clickhouse")
    lines = written.differences(langfuse_api.read_evaluation(api, written))
    assert [line.split(":")[0] for line in lines] == [f"trace {written.trace_id}", "observations", "scores",
                                                      "dataset run items"]


def test_a_renamed_evaluation_trace_names_the_name_read_and_the_name_written(api):
    """FR28: an evaluation trace that reads back under another name says both names (local Langfuse API
    stand-in, the trace renamed through the API)."""
    written = langfuse_api.write_evaluation(api, secrets.token_hex(4))
    api.ingest_trace(written.trace_id, "renamed")
    assert written.differences(langfuse_api.read_evaluation(api, written)) == [
        f"trace {written.trace_id}: named 'renamed', written {written.trace_name!r}"]


def test_a_timed_out_wait_logs_what_it_awaited_then_what_is_missing(api, fake, caplog):
    """FR28, decision 24: a wait that gives up logs two warnings: what it waited for, then what read back
    instead, kind by kind (local Langfuse API stand-in, its ClickHouse store wiped)."""
    written = langfuse_api.write_evaluation(api, secrets.token_hex(4))
    fake.wipe("clickhouse")
    with caplog.at_level("INFO", logger="lfharness"):
        read = langfuse_api.wait_for_evaluation(api, written, timeout=0.3, interval=0.1)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 2 and warnings[0].startswith("gave up waiting for evaluation read back as written")
    assert warnings[1] == "read back instead: " + "; ".join(written.differences(read))
    not_yet = [r.getMessage() for r in caplog.records if "not yet" in r.getMessage()]
    assert not_yet and "read 0/1 traces, 0/2 observations, 0/1 scores, 0/1 dataset run items" in not_yet[0]


def test_a_wait_returns_as_soon_as_the_evaluation_is_complete(api, fake):
    """FR28, decision 24: the wait ends at the first complete read, not at its timeout (local Langfuse API
    stand-in with a 0.3 s ingestion lag)."""
    fake.set_ingestion_lag(0.3)
    written = langfuse_api.write_evaluation(api, secrets.token_hex(4))
    started = time.monotonic()
    assert langfuse_api.wait_for_evaluation(api, written, timeout=20, interval=0.1) == written
    assert time.monotonic() - started < 10


def test_the_wait_for_an_sdk_trace_logs_what_is_still_missing(api, caplog):
    """Decision 25: while an SDK trace is not there, the wait's log lines count what read back of each
    kind (local Langfuse API stand-in, nothing sent)."""
    with caplog.at_level("INFO", logger="lfharness"):
        langfuse_api.wait_for_sdk_trace(api, _sdk_trace("e2e-sdk"), timeout=0.3, interval=0.1)
    assert "read 0/1 traces, 0/1 observations, 0/1 scores" in caplog.text


def test_a_timed_out_wait_for_an_sdk_trace_warns_what_it_awaited(api, caplog):
    """Decision 25, NFR4: a wait for an SDK trace that gives up says, as a warning, which trace it awaited
    and with what (local Langfuse API stand-in, nothing sent)."""
    with caplog.at_level("INFO", logger="lfharness"):
        langfuse_api.wait_for_sdk_trace(api, _sdk_trace("e2e-sdk"), timeout=0.3, interval=0.1)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and warnings[0].startswith(
        "gave up waiting for SDK trace read back as sent: trace t with 1 observation(s) (SPAN) and 1 score(s)")


def test_a_refused_connection_during_the_wait_for_an_sdk_trace_counts_as_not_yet(caplog):
    """Decision 25: while the port-forward to Langfuse is down (connection refused), the wait for an SDK
    trace keeps trying until its timeout (a closed local port)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens: every connection is refused
    api = langfuse_api.Api(f"http://127.0.0.1:{port}", PUBLIC_KEY, SECRET_KEY, timeout=2)
    with caplog.at_level("INFO", logger="lfharness"), pytest.raises(requests.ConnectionError):
        langfuse_api.wait_for_sdk_trace(api, _sdk_trace("e2e-sdk"), timeout=0.5, interval=0.1)
    assert "not yet (ConnectionError" in caplog.text


def _ingest_as_sdk(api: langfuse_api.Api, trace_id: str, score_ids: tuple[str, ...]) -> langfuse_api.SdkTrace:
    """Writes through ingestion what an SDK session writes (a named trace, a span, scores): the reads
    are the same whichever way the rows came in."""
    spans = _spans(trace_id, 1)
    scores = tuple(langfuse_api.Score(s, "e2e-correctness", 0.875, "NUMERIC", trace_id) for s in score_ids)
    api.ingest(langfuse_api.evaluation_batch(trace_id, f"e2e-sdk-{trace_id}", spans, scores), what=trace_id)
    return langfuse_api.SdkTrace(trace_id, f"e2e-sdk-{trace_id}", spans, tuple(sorted(scores, key=lambda s: s.id)))


def test_an_sdk_trace_reads_back_without_the_projects_other_traces(api):
    """Decision 25: an SDK trace reads back as sent in a project that holds other traces too: their
    observations and scores are not counted as its own (local Langfuse API stand-in)."""
    written = _ingest_as_sdk(api, "t-sdk", ("s-1",))
    _ingest_as_sdk(api, "t-other", ("s-2",))
    assert langfuse_api.read_sdk_trace(api, written) == written


def test_a_wait_for_an_sdk_trace_returns_as_soon_as_it_reads_back_as_sent(api):
    """Decision 25: the wait for an SDK trace ends at the first complete read, not at its timeout (local
    Langfuse API stand-in)."""
    written = _ingest_as_sdk(api, "t-sdk", ("s-1",))
    started = time.monotonic()
    assert langfuse_api.wait_for_sdk_trace(api, written, timeout=20, interval=0.1) == written
    assert time.monotonic() - started < 10


def test_an_sdk_traces_scores_read_back_in_id_order_whatever_order_they_were_sent_in(api):
    """Decision 25: scores read back sorted by id, so a read compares equal to what was sent however
    Langfuse orders its list (local Langfuse API stand-in, scores sent in reverse id order)."""
    written = _ingest_as_sdk(api, "t-sdk", ("s-2", "s-1"))
    assert [s.id for s in langfuse_api.read_sdk_trace(api, written).scores] == ["s-1", "s-2"]


def test_every_row_missing_is_named_apart_from_the_others():
    """FR28: two rows missing from a read are named one by one, comma-separated (no server needed:
    SdkTrace values)."""
    assert _sdk_trace("e2e-sdk", observations=2).differences(_sdk_trace("e2e-sdk", observations=0)) == [
        "observations: 0 read, 2 written; missing or changed: o0, o1"]


def test_every_event_of_two_evaluations_has_an_event_id_of_its_own():
    """FR9, J4: the trace-create and score-create events of two evaluations all have different event ids,
    so none is taken for a retry of another nor overwrites its raw event in S3 (no server needed: the
    batches)."""
    ids = [event["id"] for n in (1, 2) for event in langfuse_api.evaluation_batch(
        f"t-{n}", "e2e", (), (langfuse_api.Score(f"s-{n}", "e2e-correctness", 1.0, "NUMERIC", f"t-{n}"),))["batch"]]
    assert len(set(ids)) == len(ids) == 4


def test_the_two_events_missing_from_a_207_are_named_one_by_one():
    """J2, NFR4: a 207 that lists none of our events names each missing event, comma-separated (a local
    server answering a 207 without them)."""
    empty = json.dumps({"successes": [], "errors": []}).encode()
    batch = {"batch": [*langfuse_api.ingestion_batch("t-1", event_id="e-1")["batch"],
                       *langfuse_api.ingestion_batch("t-2", event_id="e-2")["batch"]]}
    with httpserver.LocalServer(_Canned, (207, "application/json", empty), name="langfuse-207") as server:
        with pytest.raises(langfuse_api.LangfuseApiError, match="without our event\\(s\\) e-1, e-2 among"):
            langfuse_api.Api(server.url, PUBLIC_KEY, SECRET_KEY, timeout=5).ingest(batch, what="ingest probes")


USAGES = {
    "output tokens only (a completion without a prompt)": ({"output": 5, "total": 5}, (0, 5, 5)),
    "input tokens only (an embedding)": ({"input": 7, "total": 7}, (7, 0, 7)),
}


@pytest.mark.parametrize(("usage", "expected"), USAGES.values(), ids=USAGES)
def test_token_counts_a_generation_does_not_name_read_back_as_zero(api, usage, expected):
    """Decision 24: a generation whose usage leaves out a count reads back with 0 for it, not a made-up
    count (local Langfuse API stand-in, which stores the counts as sent)."""
    batch = langfuse_api.ingestion_batch("t-gen")
    batch["batch"].append({"id": str(uuid.uuid4()), "type": "generation-create", "timestamp": langfuse_api.iso_timestamp(),
                           "body": {"id": "g-1", "traceId": "t-gen", "name": "answer", "model": "m",
                                    "usage": {**usage, "unit": "TOKENS"}}})
    api.ingest(batch, what="ingest a generation with part of its usage")
    read = langfuse_api.read_sdk_trace(api, langfuse_api.SdkTrace("t-gen", None, (), ()))
    assert [o.usage for o in read.observations] == [langfuse_api.Usage(*expected)]


def test_the_evaluations_span_and_generation_are_named_after_the_run(api):
    """FR28, decision 24: the span and the generation an evaluation writes carry names that say which run
    wrote them, and read back under them (local Langfuse API stand-in)."""
    written = langfuse_api.write_evaluation(api, "run-7f3a")
    read = langfuse_api.read_evaluation(api, written)
    assert [o.name and "run-7f3a" in o.name for o in read.observations] == [True, True]


def test_the_evaluations_dataset_item_asks_a_question_naming_the_run_with_an_expected_answer(api):
    """FR28, decision 24: the dataset item an evaluation links holds an input naming the run and an
    expected output, as an evaluation's item does (local Langfuse API stand-in)."""
    written = langfuse_api.write_evaluation(api, "run-7f3a")
    item = api.get_dataset_item(written.run_items[0].dataset_item_id)
    assert "run-7f3a" in json.dumps(item["input"]) and item["expectedOutput"]


def test_the_evaluations_dataset_says_who_wrote_it(api):
    """FR28: the dataset an evaluation creates says in its description that the e2e suite wrote it, for
    an operator who finds it in Langfuse's UI (local Langfuse API stand-in)."""
    written = langfuse_api.write_evaluation(api, "run-7f3a")
    assert "e2e suite" in api.get_dataset(written.dataset)["description"]


def test_writing_an_evaluation_logs_what_was_written(api, caplog):
    """FR28, NFR4: the e2e log says what an evaluation wrote (trace, observations, score, run item)
    (local Langfuse API stand-in)."""
    with caplog.at_level("INFO", logger="lfharness"):
        written = langfuse_api.write_evaluation(api, "run-7f3a")
    assert f"evaluation written: {written.describe()}" in caplog.messages


# --- where the e2e suite looks in S3 ------------------------------------------------------------------

HOUR = 1_798_761_600  # 2027-01-01T00:00:00Z, a whole hour


def test_a_send_in_the_first_minute_of_an_hour_also_looks_in_the_hour_before():
    """Issue 25 item 1: a minute's allowance for the web's clock: a send 59 s into an hour also lists
    the previous hour's prefix (no server needed)."""
    assert langfuse_api.otel_batch_prefixes("p1", HOUR + 59, HOUR + 59) == [
        "events/otel/p1/2026/12/31/23/", "events/otel/p1/2027/01/01/00/"]


def test_a_send_a_minute_into_an_hour_looks_in_that_hour_only():
    """Issue 25 item 1: from 60 s into an hour on, the previous hour is not listed (no server needed)."""
    assert langfuse_api.otel_batch_prefixes("p1", HOUR + 60, HOUR + 60) == ["events/otel/p1/2027/01/01/00/"]


# --- ingestion: the 207's body decides ------------------------------------------------------------

def test_a_207_without_our_event_among_its_successes_fails_naming_the_event():
    """J2, issue 10 item 5: a 207 with no errors that does not list our event as a success is no
    acceptance: the call fails naming the event that is missing (a local server answering an empty 207)."""
    empty = json.dumps({"successes": [{"id": "someone-else", "status": 201}], "errors": []}).encode()
    with httpserver.LocalServer(_Canned, (207, "application/json", empty), name="langfuse-207") as server:
        api = langfuse_api.Api(server.url, PUBLIC_KEY, SECRET_KEY, timeout=5)
        with pytest.raises(langfuse_api.LangfuseApiError) as err:
            event_id = "e-" + secrets.token_hex(4)
            api.ingest(langfuse_api.ingestion_batch("t-1", event_id=event_id), what="ingest probe")
    assert str(err.value).startswith(f"ingest probe: answered 207 without our event(s) {event_id} among successes")


def test_each_refused_event_is_named_on_its_own_part_of_the_message():
    """J2, issue 10 item 5: with several events refused, each appears with its status and message,
    separated by "; ", and nothing is added for an empty error field (a local server answering a 207
    with two errors)."""
    errors = [{"id": "a", "status": 400, "message": "Invalid request data", "error": ""},
              {"id": "b", "status": 409, "message": "Conflict"}]
    answer = json.dumps({"successes": [], "errors": errors}).encode()
    with httpserver.LocalServer(_Canned, (207, "application/json", answer), name="langfuse-207") as server:
        api = langfuse_api.Api(server.url, PUBLIC_KEY, SECRET_KEY, timeout=5)
        with pytest.raises(langfuse_api.LangfuseApiError) as err:
            api.ingest(langfuse_api.ingestion_batch("t-1"), what="ingest probe")
    assert str(err.value) == "ingest probe: the server rejected 2 event(s): a: 400 Invalid request data; b: 409 Conflict"


def test_several_scores_read_back_in_id_order_whatever_order_they_were_sent_in(api):
    """FR28, decision 24: what reads back is sorted by id like what was written, so an evaluation with
    several scores compares equal however the server orders its list (local Langfuse API stand-in,
    scores sent in descending id order)."""
    trace_id = str(uuid.uuid4())
    scores = tuple(langfuse_api.Score(f"{n}-{uuid.uuid4()}", "e2e-correctness", n / 10, "NUMERIC", trace_id)
                   for n in (3, 2, 1))
    api.ingest(langfuse_api.evaluation_batch(trace_id, "e2e-sorted", (), scores), what="ingest sorted probe")
    written = langfuse_api.Evaluation(trace_id, "e2e-sorted", (), tuple(sorted(scores, key=lambda s: s.id)),
                                      "no-dataset", "no-run", ())
    assert langfuse_api.read_evaluation(api, written) == written


def test_a_run_that_does_not_exist_reads_as_none(api):
    """FR28, decision 24: a dataset run that is gone (PostgreSQL lost) reads as None, so the evaluation
    reads back with no run items instead of failing (local Langfuse API stand-in, nothing written)."""
    assert api.dataset_run(f"e2e-eval-{uuid.uuid4()}", "e2e-run-none") is None


def test_an_explicit_time_is_sent_as_utc_with_milliseconds_and_a_z():
    """J2, decision 24: the ingestion schema wants an offset; the harness sends UTC with three digits of
    milliseconds and a Z for the time it is given (no server needed)."""
    assert langfuse_api.iso_timestamp(HOUR + 3661.25) == "2027-01-01T01:01:01.250Z"


def test_a_refused_connection_during_the_wait_counts_as_not_yet(caplog):
    """FR28, decision 24: while the port-forward to Langfuse is down (connection refused), the wait keeps
    trying until its timeout and logs it as "not yet"; only the read after the timeout reports the
    error (a closed local port)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens: every connection is refused
    api = langfuse_api.Api(f"http://127.0.0.1:{port}", PUBLIC_KEY, SECRET_KEY, timeout=2)
    written = langfuse_api.Evaluation("t-1", "e2e-evaluation", (), (), "d-1", "r-1", ())
    with caplog.at_level("INFO", logger="lfharness"), pytest.raises(requests.ConnectionError):
        langfuse_api.wait_for_evaluation(api, written, timeout=0.5, interval=0.1)
    assert "not yet (ConnectionError" in caplog.text
    assert "gave up waiting for evaluation read back as written" in caplog.text


def test_an_evaluation_batch_places_every_event_within_the_traces_two_seconds():
    """FR28, decision 24: Langfuse's trace view shows observations from the trace's timestamp on, so the
    batch dates the trace at `started`, each observation after it and inside its parent (given parents
    first), each event at its own time, and the score within the two seconds; every event has its own
    id (no server needed: the batch as sent)."""
    started = time.time() - 3600
    trace_id = str(uuid.uuid4())
    observations = (langfuse_api.Observation("o-parent", "SPAN", "parent", trace_id, None),
                    langfuse_api.Observation("o-child", "GENERATION", "child", trace_id, "o-parent"))
    score = langfuse_api.Score("s-1", "e2e-correctness", 0.875, "NUMERIC", trace_id)
    events = langfuse_api.evaluation_batch(trace_id, "e2e-times", observations, (score,), started=started)["batch"]

    def at(text: str) -> float:
        return dt.datetime.fromisoformat(text).timestamp()

    trace, parent, child, scored = events
    begin = at(trace["body"]["timestamp"])
    assert abs(begin - started) < 0.001 and trace["timestamp"] == trace["body"]["timestamp"]
    spans = [(at(e["body"]["startTime"]), at(e["body"]["endTime"])) for e in (parent, child)]
    assert [at(e["timestamp"]) for e in (parent, child)] == [s for s, _ in spans]
    assert begin < spans[0][0] < spans[1][0] < spans[1][1] <= spans[0][1] <= begin + 2
    assert begin <= at(scored["timestamp"]) <= begin + 2
    assert len({e["id"] for e in events}) == 4


def test_a_score_on_an_observation_reads_back_on_that_observation(api):
    """FR28, decision 24: a score given to one observation (a generation judged on its own) reads back
    attached to it, not to the trace as a whole, so an evaluation that scores its generation compares
    equal after a rebuild (local Langfuse API stand-in)."""
    trace_id, generation_id = str(uuid.uuid4()), str(uuid.uuid4())
    generation = langfuse_api.Observation(generation_id, "GENERATION", "e2e-answer", trace_id, None)
    scores = (langfuse_api.Score(str(uuid.uuid4()), "e2e-faithfulness", 0.5, "NUMERIC", trace_id, generation_id),)
    api.ingest(langfuse_api.evaluation_batch(trace_id, "e2e-scored-generation", (generation,), scores),
               what="ingest a score on a generation")
    written = langfuse_api.Evaluation(trace_id, "e2e-scored-generation", (generation,), scores, "no-dataset",
                                      "no-run", ())
    assert langfuse_api.read_evaluation(api, written).scores == scores


def test_run_items_read_back_in_id_order_whatever_order_the_server_lists_them():
    """FR28, decision 24: a run's items are compared in id order, so an evaluation with several items
    in its run compares equal however Langfuse lists them (a local server answering every read with
    one run whose items come in descending id order)."""
    items = [{"id": f"{n}-run-item", "datasetRunName": "e2e-run-r", "datasetItemId": f"item-{n}",
              "traceId": "t-1", "observationId": None} for n in (3, 2, 1)]
    payload = json.dumps({"name": "e2e-evaluation-r", "data": [], "meta": {"totalPages": 1},
                          "datasetRunItems": items}).encode()
    written = langfuse_api.Evaluation("t-1", "e2e-evaluation-r", (), (), "e2e-eval-r", "e2e-run-r", ())
    with httpserver.LocalServer(_Canned, (200, "application/json", payload), name="langfuse-run") as server:
        read = langfuse_api.read_evaluation(langfuse_api.Api(server.url, PUBLIC_KEY, SECRET_KEY, timeout=5), written)
    assert [item.id for item in read.run_items] == ["1-run-item", "2-run-item", "3-run-item"]


NO_TRACE_ID = {
    "an OTLP request object, not the stored array": b'{"resourceSpans": [{"scopeSpans": []}]}',
    "a span without a trace id": b'[{"scopeSpans": [{"spans": [{"spanId": "00f0"}]}]}]',
    "a byte over 255": b'[{"scopeSpans": [{"spans": [{"traceId": {"type": "Buffer", "data": [256, 1]}}]}]}]',
    "no bytes at all": b'[{"scopeSpans": [{"spans": [{"traceId": {"type": "Buffer", "data": [300, "a"]}}]}]}]',
}


@pytest.mark.parametrize("body", NO_TRACE_ID.values(), ids=NO_TRACE_ID)
def test_a_stored_batch_that_holds_no_readable_trace_id_gives_none(body):
    """Issue 25 item 1: a stored batch the harness cannot read a trace id from (the cases' ids say
    why) counts as no trace, not as an error that would end the SDK journey's wait (JSON bytes)."""
    assert langfuse_api.otel_batch_trace_ids(body) == set()


def test_a_trace_id_with_zero_bytes_is_read_whole():
    """Issue 25 item 1: a binary trace id holding 0x00 bytes (one in sixteen bytes of a random id)
    is read as its 32 hex digits, so the SDK's trace is found in its stored batch."""
    data = [0, 17, 0, 34, 255, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0]
    body = json.dumps([{"scopeSpans": [{"spans": [{"traceId": {"type": "Buffer", "data": data}}]}]}]).encode()
    assert langfuse_api.otel_batch_trace_ids(body) == {bytes(data).hex()}


# --- following an SDK trace: each stage that stops says what it awaited ----------------------------

def _sdk_sent(trace_id: str, name: str, scores: tuple[langfuse_api.Score, ...] = (),
              problems: tuple[str, ...] = ()) -> langfuse_api.SdkSent:
    written = langfuse_api.SdkTrace(trace_id, name, _spans(trace_id, 1), tuple(sorted(scores, key=lambda s: s.id)))
    return langfuse_api.SdkSent(written, time.time(), "3.15.0", problems)


def _stored_batches(*trace_ids: str) -> Callable[[], dict[str, bytes]]:
    """The event bucket's OTel batches as the web stores them, one per trace id (OTLP/JSON: hex ids)."""
    return lambda: {f"events/otel/p/{n}.json": json.dumps(
        [{"scopeSpans": [{"spans": [{"traceId": trace_id}]}]}]).encode() for n, trace_id in enumerate(trace_ids)}


def test_every_refusal_the_sdk_met_is_named_when_the_web_did_not_accept(api):
    """J2, issue 25 item 1: a journey the web refused stops at 'accepted by the web' naming each
    refusal the SDK met, one after another (no stand-in call is needed)."""
    sent = _sdk_sent(uuid.uuid4().hex, "e2e-sdk", problems=("spans: 401 Unauthorized", "ingestion: 401 Unauthorized"))
    with pytest.raises(langfuse_api.PipelineStopped) as stopped:
        langfuse_api.follow_sdk_trace(api, sent, dict, timeout=1, interval=0.1)
    assert str(stopped.value) == "stopped at 'accepted by the web': spans: 401 Unauthorized; ingestion: 401 Unauthorized"


def test_no_stored_batch_names_the_trace_and_the_s3_prefix_it_looked_under(api):
    """J2, issue 25 item 1: no OTel batch of the trace in the event bucket stops at 'batch written to
    S3', saying which trace was looked for and where (an empty bucket listing)."""
    trace_id = uuid.uuid4().hex
    with pytest.raises(langfuse_api.PipelineStopped) as stopped:
        langfuse_api.follow_sdk_trace(api, _sdk_sent(trace_id, "e2e-sdk"), dict, timeout=0.3, interval=0.1)
    assert str(stopped.value).startswith(
        f"stopped at 'batch written to S3': gave up waiting for an OTel batch holding trace {trace_id} in S3 "
        "(events/otel/) after ")


def test_the_batches_holding_the_trace_are_logged_by_their_keys(api, fake, caplog):
    """J2, issue 25 item 1: the run log names the stored batches that hold the trace, in key order,
    so an operator can open them in the bucket (local Langfuse API stand-in)."""
    trace_id = uuid.uuid4().hex
    written = _ingest_as_sdk(api, trace_id, ())
    sent = langfuse_api.SdkSent(written, time.time(), "3.15.0")
    caplog.set_level(logging.INFO, logger="lfharness.stack.langfuse_api")
    langfuse_api.follow_sdk_trace(api, sent, _stored_batches(trace_id, uuid.uuid4().hex, trace_id),
                                  timeout=5, interval=0.1)
    assert f"trace {trace_id}: OTel batch events/otel/p/0.json, events/otel/p/2.json" in caplog.messages


def test_a_trace_the_worker_never_wrote_names_the_trace_and_the_read_it_awaited(api):
    """J2, issue 25 item 1: a batch in S3 whose trace never reads back stops at 'processed by the
    worker', naming the trace and the read that never answered 200 (local Langfuse API stand-in,
    nothing ingested)."""
    trace_id = uuid.uuid4().hex
    with pytest.raises(langfuse_api.PipelineStopped) as stopped:
        langfuse_api.follow_sdk_trace(api, _sdk_sent(trace_id, "e2e-sdk"), _stored_batches(trace_id),
                                      timeout=0.3, interval=0.1)
    assert str(stopped.value).startswith(
        f"stopped at 'processed by the worker': gave up waiting for the worker's processing of trace {trace_id} "
        "(GET /api/public/traces/{id} 200) after ")


class _FlakyTraces(BaseHTTPRequestHandler):
    """Answers the trace read 503 the first two times, then 200; every list is empty."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's signature)
        pass

    def do_GET(self) -> None:
        state = self.server.state  # type: ignore[attr-defined]
        if self.path.startswith("/api/public/traces/"):
            state["trace_reads"] += 1
            if state["trace_reads"] <= 2:
                httpserver.send_bytes(self, 503, b'{"message": "ClickHouse starting"}', "application/json")
                return
            httpserver.send_bytes(self, 200, json.dumps({"name": "e2e-sdk"}).encode(), "application/json")
            return
        httpserver.send_bytes(self, 200, b'{"data": [], "meta": {"totalPages": 1}}', "application/json")


def test_a_trace_read_refused_while_langfuse_starts_is_tried_again():
    """J2, issue 25 item 1: answers 503 to the trace read (ClickHouse still starting) count as 'not
    processed yet', so the journey goes on and reads the trace back (a local server answering the
    trace read 503 twice, then 200, and empty lists)."""
    trace_id = uuid.uuid4().hex
    state = {"trace_reads": 0}
    sent = langfuse_api.SdkSent(langfuse_api.SdkTrace(trace_id, "e2e-sdk", (), ()), time.time(), "3.15.0")
    with httpserver.LocalServer(_FlakyTraces, state, name="langfuse-flaky") as server:
        api = langfuse_api.Api(server.url, PUBLIC_KEY, SECRET_KEY, timeout=5)
        read = langfuse_api.follow_sdk_trace(api, sent, _stored_batches(trace_id), timeout=5, interval=0.05)
    assert (read, state["trace_reads"] > 2) == (sent.written, True)


def test_a_fault_in_the_harness_during_the_worker_stage_fails_at_once(api, monkeypatch):
    """J2: only Langfuse's refusals and the network's errors are waited out; anything else (a fault of
    the harness) ends the journey at once with its own error instead of after the whole wait as 'not
    processed' (local Langfuse API stand-in, its trace read replaced by one that raises)."""
    trace_id = uuid.uuid4().hex

    def broken(self: langfuse_api.Api, trace_id: str) -> bool:
        raise RuntimeError("harness fault")

    monkeypatch.setattr(langfuse_api.Api, "trace_exists", broken)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="harness fault"):
        langfuse_api.follow_sdk_trace(api, _sdk_sent(trace_id, "e2e-sdk"), _stored_batches(trace_id),
                                      timeout=3, interval=0.1)
    assert time.monotonic() - started < 2


def test_a_read_back_that_stays_incomplete_names_every_difference(api):
    """J2, issue 25 item 1: a trace that reads back under another name and without its score stops at
    'read back complete', naming both differences (local Langfuse API stand-in)."""
    trace_id = uuid.uuid4().hex
    _ingest_as_sdk(api, trace_id, ())
    score_id = str(uuid.uuid4())
    sent = _sdk_sent(trace_id, "e2e-sdk-renamed",
                     (langfuse_api.Score(score_id, "e2e-correctness", 0.875, "NUMERIC", trace_id),))
    with pytest.raises(langfuse_api.PipelineStopped) as stopped:
        langfuse_api.follow_sdk_trace(api, sent, _stored_batches(trace_id), timeout=0.5, interval=0.1)
    assert str(stopped.value) == (
        f"stopped at 'read back complete': trace {trace_id}: named 'e2e-sdk-{trace_id}', sent 'e2e-sdk-renamed'; "
        f"scores: 0 read, 1 written; missing or changed: {score_id}")


def test_the_read_back_looks_again_at_the_interval_it_was_given(api, fake):
    """J2: a score the worker writes a moment after the trace holds the journey up that moment, not a
    default 10 s poll (local Langfuse API stand-in: the score readable 0.6 s after it was accepted)."""
    trace_id = uuid.uuid4().hex
    written = _ingest_as_sdk(api, trace_id, ())
    fake.set_ingestion_lag(0.6)
    score = langfuse_api.Score(str(uuid.uuid4()), "e2e-correctness", 0.875, "NUMERIC", trace_id)
    api.ingest(langfuse_api.evaluation_batch(trace_id, written.trace_name, (), (score,)), what="late score")
    sent = langfuse_api.SdkSent(dataclasses.replace(written, scores=(score,)), time.time(), "3.15.0")
    started = time.monotonic()
    read = langfuse_api.follow_sdk_trace(api, sent, _stored_batches(trace_id), timeout=8, interval=0.1)
    assert (read == sent.written, time.monotonic() - started < 4) == (True, True)


# --- the SDK session and the shell's proxy settings ---------------------------------------------------

NO_PROXY_CASES = {
    "NO_PROXY only": ({"NO_PROXY": "corp.example,,.internal"}, "corp.example,.internal,127.0.0.1"),
    "no_proxy only": ({"no_proxy": "corp.example, .internal"}, "corp.example, .internal,127.0.0.1"),
    "neither": ({}, "127.0.0.1"),
}


@pytest.mark.parametrize(("shell", "during"), NO_PROXY_CASES.values(), ids=NO_PROXY_CASES)
def test_the_sdk_session_adds_its_host_to_the_shells_no_proxy_and_puts_it_back(monkeypatch, shell, during):
    """Decision 25: while an SDK session runs, its host joins the shell's NO_PROXY entries (kept, empty
    ones dropped) under both spellings requests reads, and afterwards the environment is exactly as
    it was (langfuse_api._bypass_proxies, which send_with_sdk runs around its session)."""
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name, value in shell.items():
        monkeypatch.setenv(name, value)
    restore = langfuse_api._bypass_proxies("http://127.0.0.1:3000")
    inside = {name: os.environ.get(name) for name in ("NO_PROXY", "no_proxy")}
    restore()
    after = {name: os.environ.get(name) for name in ("NO_PROXY", "no_proxy")}
    assert (inside, after) == ({"NO_PROXY": during, "no_proxy": during},
                               {"NO_PROXY": shell.get("NO_PROXY"), "no_proxy": shell.get("no_proxy")})


def test_an_sdk_trace_is_described_by_its_kinds_of_observation():
    """NFR4: the log line of an SDK session names the trace and counts its observations, with their
    kinds in order, and its scores (what the operator reads in the run log)."""
    observations = (langfuse_api.Observation("o-2", "SPAN", "e2e-agent", "t-1", None),
                    langfuse_api.Observation("o-1", "GENERATION", "e2e-answer", "t-1", "o-2"))
    described = langfuse_api.SdkTrace("t-1", "e2e-sdk", observations, ()).describe()
    assert described == "trace t-1 with 2 observation(s) (GENERATION, SPAN) and 0 score(s)"
