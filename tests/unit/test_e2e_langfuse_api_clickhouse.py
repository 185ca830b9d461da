"""What an evaluation writes to ClickHouse, read back through Langfuse's public API exactly (decision 24,
FR28, Journey 3; static tier): the e2e suite's check that traces, observations, scores and dataset
run items survive a pause and a 03-app rebuild, and that the check fails when they do not.

Stand-in: lfharness.testing.langfuse_fake.LangfuseFake, a local HTTP server with Langfuse 3.150's
paths, status codes and response shapes (POST /api/public/ingestion validated event by event, 207;
GET /api/public/traces/{id}, /api/public/observations, /api/public/v2/scores; POST
/api/public/dataset-run-items; GET /api/public/datasets/{name}/runs/{run}), a ClickHouse store
that `wipe("clickhouse")` empties, and an ingestion lag like the worker's.
"""

from __future__ import annotations

import logging
import secrets
import time
import uuid

import pytest
import requests

from lfharness.stack import langfuse_api
from lfharness.testing.langfuse_fake import LangfuseFake

pytestmark = pytest.mark.static

PUBLIC_KEY = "pk-lf-" + "2" * 32
SECRET_KEY = "sk-lf-" + secrets.token_hex(16)
EVERYTHING = {"traces": 1, "observations": 2, "scores": 1, "dataset run items": 1}
NOTHING = {"traces": 0, "observations": 0, "scores": 0, "dataset run items": 0}


@pytest.fixture
def fake():
    with LangfuseFake(PUBLIC_KEY, SECRET_KEY) as server:
        yield server


@pytest.fixture
def api(fake) -> langfuse_api.Api:
    return langfuse_api.Api(fake.base_url, PUBLIC_KEY, SECRET_KEY, timeout=5)


@pytest.fixture
def written(api) -> langfuse_api.Evaluation:
    return langfuse_api.write_evaluation(api, secrets.token_hex(4))


def _batch(fake) -> list[dict]:
    [sent] = [r.body["batch"] for r in fake.requests() if r.path == "/api/public/ingestion"]
    return sent


# --- what is written ------------------------------------------------------------------------------

def test_the_trace_its_span_generation_and_score_are_sent_in_one_ingestion_batch(fake, written):
    """Decision 24, FR28: one POST /api/public/ingestion carries trace-create, span-create,
    generation-create and score-create, each event with its own id (local Langfuse API stand-in)."""
    batch = _batch(fake)
    assert [e["type"] for e in batch] == ["trace-create", "span-create", "generation-create", "score-create"]
    assert len({e["id"] for e in batch}) == 4


def test_the_generation_is_nested_under_the_span_with_its_model_and_token_usage(fake, written):
    """Decision 24: the generation's parentObservationId is the span, and it carries a model and
    usage {input, output, total} in tokens (local Langfuse API stand-in)."""
    by_type = {e["type"]: e["body"] for e in _batch(fake)}
    span, generation = by_type["span-create"], by_type["generation-create"]
    assert (span["traceId"], span["parentObservationId"]) == (written.trace_id, None)
    assert (generation["traceId"], generation["parentObservationId"]) == (written.trace_id, span["id"])
    assert (generation["model"], generation["usage"]) == (
        langfuse_api.EVALUATION_MODEL, {"input": 21, "output": 34, "total": 55, "unit": "TOKENS"})


def test_the_score_is_numeric_with_a_name_and_value_on_the_trace(fake, written):
    """Decision 24: the score-create is NUMERIC, named, valued and attached to the trace (local Langfuse API stand-in)."""
    [score] = [e["body"] for e in _batch(fake) if e["type"] == "score-create"]
    assert (score["traceId"], score["name"], score["value"], score["dataType"]) == (
        written.trace_id, "e2e-correctness", 0.875, "NUMERIC")


def test_the_dataset_run_item_links_the_dataset_item_to_the_trace_in_the_run(fake, written):
    """Decision 24: POST /api/public/dataset-run-items names the run, the item created through
    /api/public/dataset-items and the trace, with the project's key (local Langfuse API stand-in)."""
    [linked] = [r for r in fake.requests() if r.path == "/api/public/dataset-run-items"]
    [item] = written.run_items
    assert linked.public_key == PUBLIC_KEY
    assert linked.body == {"runName": written.run_name, "datasetItemId": item.dataset_item_id,
                           "traceId": written.trace_id}


# --- what reads back -------------------------------------------------------------------------------

def test_an_evaluation_reads_back_with_the_exact_ids_values_and_counts_written(api, written):
    """Decision 24, FR28: the trace, both observations (types, parent, model, usage), the score (value)
    and the dataset run item read back exactly as written: 1 trace, 2 observations, 1 score, 1 run
    item (local Langfuse API stand-in)."""
    read = langfuse_api.read_evaluation(api, written)
    assert read.counts() == EVERYTHING
    assert read == written


def test_the_read_back_uses_langfuse_3150s_read_endpoints(api, fake, written):
    """Decision 24: the read goes through GET /api/public/traces/{id}, /api/public/observations?traceId=,
    /api/public/v2/scores?traceId= (the v1 list has no traceId filter in 3.150) and
    /api/public/datasets/{name}/runs/{run}, with the project's key (local Langfuse API stand-in)."""
    before = len(fake.requests())
    langfuse_api.read_evaluation(api, written)
    reads = fake.requests()[before:]
    assert [(r.method, r.path) for r in reads] == [
        ("GET", f"/api/public/traces/{written.trace_id}"),
        ("GET", f"/api/public/datasets/{written.dataset}/runs/{written.run_name}"),
        ("GET", "/api/public/observations"), ("GET", "/api/public/v2/scores")]
    assert [r.query.get("traceId") for r in reads[2:]] == [[written.trace_id]] * 2
    assert {r.public_key for r in reads} == {PUBLIC_KEY}


def test_the_trace_embeds_its_observations_and_score_as_langfuse_3150_does(api, written):
    """Decision 24: GET /api/public/traces/{id} answers the trace with its observations and scores
    embedded (3.150's traces/[traceId].ts reads all three from ClickHouse) (local Langfuse API stand-in)."""
    trace = api.trace(written.trace_id)
    assert trace is not None
    assert sorted(o["id"] for o in trace["observations"]) == [o.id for o in written.observations]
    assert [s["id"] for s in trace["scores"]] == [s.id for s in written.scores]


def test_reads_wait_for_asynchronous_ingestion_until_everything_is_there(api, fake):
    """Decision 24: the worker writes to ClickHouse after the API accepted, so a read at once finds
    nothing; wait_for_evaluation reads until it is complete, within its timeout (local Langfuse API
    stand-in with a 1 s ingestion lag)."""
    fake.set_ingestion_lag(1.0)
    written = langfuse_api.write_evaluation(api, secrets.token_hex(4))
    at_once = langfuse_api.read_evaluation(api, written)
    assert at_once.counts() == NOTHING
    assert langfuse_api.wait_for_evaluation(api, written, timeout=15, interval=0.2) == written


# --- the check can fail ------------------------------------------------------------------------------

def test_an_evaluation_lost_with_clickhouse_reads_back_as_missing(api, fake, written):
    """FR28, decision 24: the check can fail: with ClickHouse's data gone, the trace answers 404 and no
    observation, score or dataset run item reads back, though the run itself is PostgreSQL's and
    stays (local Langfuse API stand-in, its ClickHouse store wiped)."""
    fake.wipe("clickhouse")
    read = langfuse_api.read_evaluation(api, written)
    assert read.counts() == NOTHING
    assert read != written
    assert api.dataset_run(written.dataset, written.run_name) is not None


def test_a_wait_for_an_evaluation_lost_with_clickhouse_ends_at_its_timeout_naming_the_loss(api, fake, written,
                                                                                          caplog):
    """FR28, decision 24: waiting for a lost evaluation gives up at its timeout, logs what it waited for
    and returns what is there, so the e2e assert fails with the difference (local Langfuse API
    stand-in, its ClickHouse store wiped)."""
    fake.wipe("clickhouse")
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="lfharness.stack.langfuse_api"):
        read = langfuse_api.wait_for_evaluation(api, written, timeout=0.5, interval=0.1)
    assert time.monotonic() - started < 5
    assert read != written
    assert f"gave up waiting for evaluation read back as written: trace {written.trace_id}" in caplog.text
    assert written.differences(read)[0] == f"trace {written.trace_id}: not readable"


def test_a_clickhouse_loss_leaves_datasets_items_and_prompts_readable(api, fake):
    """Decision 24: ClickHouse's loss is not PostgreSQL's: the dataset, its item and the prompt still
    read back exactly (local Langfuse API stand-in, its ClickHouse store wiped)."""
    markers = langfuse_api.write_markers(api, secrets.token_hex(4))
    fake.wipe("clickhouse")
    assert langfuse_api.read_markers(api, markers) == {"dataset": True, "dataset item": True, "prompt": True}


def test_a_score_with_another_value_does_not_read_back_as_written(api, written):
    """FR28: values are compared exactly: the same score id with another value (an upsert through the
    API) makes the read differ from what was written (local Langfuse API stand-in)."""
    [score] = written.scores
    api.ingest({"batch": [{"id": str(uuid.uuid4()), "type": "score-create", "timestamp": langfuse_api.iso_timestamp(),
                           "body": {"id": score.id, "traceId": written.trace_id, "name": score.name, "value": 0.5,
                                    "dataType": "NUMERIC"}}]}, what="overwrite the score")
    read = langfuse_api.read_evaluation(api, written)
    assert read.counts() == EVERYTHING
    assert written.differences(read) == [f"scores: 1 read, 1 written; missing or changed: {score.id}; "
                                         f"not written: {score.id}"]


# --- what the server refuses ----------------------------------------------------------------------------

def _event(**overrides: object) -> dict:
    event = {"id": str(uuid.uuid4()), "type": "trace-create", "timestamp": langfuse_api.iso_timestamp(),
             "body": {"id": str(uuid.uuid4()), "name": "refused?"}}
    return {k: v for k, v in {**event, **overrides}.items() if v is not None}


REFUSED = {
    "unknown type": _event(type="trace-delete"),
    "no id": _event(id=None),
    "no timestamp": _event(timestamp=None),
    "dataset-run-item-create (internal only)": _event(type="dataset-run-item-create", body={
        "traceId": "t", "datasetId": "d", "runId": "r", "datasetItemId": "i"}),
    "span without an id": _event(type="span-create", body={"traceId": "t", "name": "no id"}),
}


@pytest.mark.parametrize("event", REFUSED.values(), ids=REFUSED.keys())
def test_an_invalid_event_is_refused_with_400_inside_the_207_while_the_others_are_accepted(fake, event):
    """Decision 24: as 3.150's processEventBatch, ingestion validates event by event: the invalid one
    lands in `errors` with 400 "Invalid request data", a valid one in the same batch in `successes`,
    and the answer is 207 (local Langfuse API stand-in)."""
    good = _event()
    resp = requests.post(f"{fake.base_url}/api/public/ingestion", json={"batch": [event, good]},
                         auth=(PUBLIC_KEY, SECRET_KEY), timeout=5)
    body = resp.json()
    assert resp.status_code == 207
    assert body["successes"] == [{"id": good["id"], "status": 201}]
    assert [(e["id"], e["status"], e["message"]) for e in body["errors"]] == [
        (event.get("id", "unknown"), 400, "Invalid request data")]


def test_ingesting_an_unknown_event_type_fails_with_the_servers_message(api):
    """Decision 24: the helper fails on a refused event (the 207 alone proves nothing) and names the
    status and message (local Langfuse API stand-in)."""
    event = _event(type="trace-delete")
    with pytest.raises(langfuse_api.LangfuseApiError,
                       match=f"rejected 1 event.*{event['id']}: 400 Invalid request data.*No matching discriminator"):
        api.ingest({"batch": [event]}, what="ingest an unknown event type")


def test_a_dataset_run_item_for_an_unknown_dataset_item_is_refused_with_404(api, written):
    """Decision 24: as 3.150's dataset-run-items.ts, linking an item that does not exist answers 404
    "Dataset item not found" and nothing is linked (local Langfuse API stand-in)."""
    with pytest.raises(langfuse_api.LangfuseApiError, match="answered 404.*Dataset item not found"):
        api.create_dataset_run_item(written.run_name, f"no-such-item-{uuid.uuid4()}", written.trace_id)
    assert langfuse_api.read_evaluation(api, written).run_items == written.run_items
