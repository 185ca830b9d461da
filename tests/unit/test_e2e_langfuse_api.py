"""The e2e suite's Langfuse API calls: ingestion read by its 207 body, and the data that proves a
rebuild kept PostgreSQL (issue 10 items 3 and 5; static tier). ClickHouse's part (an evaluation's
trace, observations, score and dataset run item; decision 24) is in test_e2e_langfuse_api_clickhouse.py.

Stand-in: lfharness.testing.langfuse_fake.LangfuseFake, a local HTTP server with the response
shapes of Langfuse 3.150's public API (207 {successes, errors}; v2 datasets, dataset items, v2
prompts; 404 "Trace <id> not found within authorized project") that records every request.
"""

from __future__ import annotations

import secrets
import uuid

import pytest

from lfharness.stack import langfuse_api
from lfharness.testing.langfuse_fake import LangfuseFake

pytestmark = pytest.mark.static

PUBLIC_KEY = "pk-lf-" + "1" * 32
SECRET_KEY = "sk-lf-" + secrets.token_hex(16)


@pytest.fixture
def fake():
    with LangfuseFake(PUBLIC_KEY, SECRET_KEY) as server:
        yield server


@pytest.fixture
def api(fake) -> langfuse_api.Api:
    return langfuse_api.Api(fake.base_url, PUBLIC_KEY, SECRET_KEY, timeout=5)


# --- item 5: ingestion success is read from the 207 body ----------------------------------------

def test_ingestion_accepted_returns_our_event_id_and_sent_the_trace(api, fake):
    """J2, issue 10 item 5: an accepted trace-create comes back as our event id among successes, sent with
    the project's public key (local Langfuse API stand-in)."""
    trace_id = str(uuid.uuid4())
    event_id = api.ingest_trace(trace_id)
    sent = [r for r in fake.requests() if r.path == "/api/public/ingestion"]
    assert [(r.public_key, r.body["batch"][0]["id"], r.body["batch"][0]["body"]["id"]) for r in sent] == [
        (PUBLIC_KEY, event_id, trace_id)]


def test_ingestion_with_errors_in_its_207_fails_at_once_with_the_servers_message(api, fake):
    """J2, issue 10 item 5: a 207 whose `errors` holds our event fails with the server's message,
    although the status code is the same as on success (local Langfuse API stand-in)."""
    fake.reject_next_events(["Invalid request data"])
    with pytest.raises(langfuse_api.LangfuseApiError, match="rejected 1 event.*400 Invalid request data"):
        api.ingest_trace(str(uuid.uuid4()))


def test_ingestion_errors_never_carry_the_secret_key(api, fake):
    """NFR1, issue 10 item 5: the failure message names the call and the server's words, not the secret key
    (local Langfuse API stand-in)."""
    fake.reject_next_events(["Invalid request data"])
    with pytest.raises(langfuse_api.LangfuseApiError) as err:
        api.ingest_trace(str(uuid.uuid4()))
    assert SECRET_KEY not in f"{err.value} {api!r}"


def test_refused_keys_fail_with_the_status_and_message(fake):
    """FR14, issue 10 item 5: wrong project keys fail with 401 and the server's message (local Langfuse API stand-in)."""
    wrong = langfuse_api.Api(fake.base_url, PUBLIC_KEY, "sk-lf-wrong", timeout=5)
    with pytest.raises(langfuse_api.LangfuseApiError, match="answered 401.*Invalid credentials"):
        wrong.ingest_trace(str(uuid.uuid4()))


# --- item 3: data that survives only if PostgreSQL kept it; a trace lost with ClickHouse -----------------

def test_markers_are_written_through_the_public_api_with_the_project_keys(api, fake):
    """FR28, decision 4, issue 10 item 3: a dataset, its item and a prompt are created through
    POST /api/public/v2/datasets, /api/public/dataset-items and /api/public/v2/prompts (local Langfuse API stand-in)."""
    langfuse_api.write_markers(api, "run1")
    assert [(r.method, r.path, r.public_key) for r in fake.requests()] == [
        ("POST", "/api/public/v2/datasets", PUBLIC_KEY), ("POST", "/api/public/dataset-items", PUBLIC_KEY),
        ("POST", "/api/public/v2/prompts", PUBLIC_KEY)]


def test_markers_read_back_exactly_while_postgres_keeps_them(api):
    """FR28, decision 4, issue 10 item 3: every marker written reads back with the content written
    (local Langfuse API stand-in)."""
    markers = langfuse_api.write_markers(api, secrets.token_hex(4))
    assert langfuse_api.read_markers(api, markers) == {"dataset": True, "dataset item": True, "prompt": True}


def test_markers_lost_with_postgres_read_back_as_missing(api, fake):
    """FR28, issue 10 item 3: the check can fail: with PostgreSQL's data gone, each marker reads back
    missing (local Langfuse API stand-in, its PostgreSQL store wiped)."""
    markers = langfuse_api.write_markers(api, secrets.token_hex(4))
    fake.wipe("postgres")
    assert langfuse_api.read_markers(api, markers) == {"dataset": False, "dataset item": False, "prompt": False}


def test_a_marker_of_another_run_does_not_count(api):
    """FR28, issue 10 item 3: a dataset item whose content differs from what this run wrote is not a
    survivor (local Langfuse API stand-in; the item is overwritten through the API)."""
    markers = langfuse_api.write_markers(api, "run-a")
    api.create_dataset_item(markers.dataset, markers.item_id, {"question": "someone else's"}, None)
    assert langfuse_api.read_markers(api, markers)["dataset item"] is False


def test_a_trace_lost_with_clickhouse_reads_as_gone(api, fake):
    """FR28, decision 4, issue 10 item 3: a trace readable before reads as gone (404) once ClickHouse's
    data is lost (local Langfuse API stand-in, its ClickHouse store wiped)."""
    trace_id = str(uuid.uuid4())
    api.ingest_trace(trace_id)
    before = api.trace_exists(trace_id)
    fake.wipe("clickhouse")
    assert (before, api.trace_exists(trace_id)) == (True, False)


# --- issue 15 defect 8: health that touches the database, the event object Langfuse writes ------

def test_health_check_fails_while_the_database_is_unavailable(fake):
    """FR19, Journey 3, issue 15 defect 8: the health check asks failIfDatabaseUnavailable=true, so a
    Langfuse that cannot reach PostgreSQL answers 503 instead of 200 (Langfuse 3.150 answers 200
    without touching the database otherwise) (local Langfuse API stand-in with its database down)."""
    fake.set_database_available(False)
    assert langfuse_api.health(fake.base_url).status_code == 503


def test_health_check_answers_200_while_the_database_is_available(fake):
    """FR19, issue 15 defect 8: the same check answers 200 with the database up (local Langfuse API stand-in)."""
    assert langfuse_api.health(fake.base_url).status_code == 200


def test_a_traces_event_object_key_follows_langfuses_s3_layout():
    """FR9, J4, issue 15 defect 8: the raw event of a trace-create lands at
    <prefix><projectId>/trace/<traceId>/<eventId>.json (Langfuse 3.150 processEventBatch: the key of
    the first event of the batch for that trace), so the rebuild check can name the object it reads."""
    assert langfuse_api.event_object_key("proj-1", "trace-2", "event-3") == "events/proj-1/trace/trace-2/event-3.json"
