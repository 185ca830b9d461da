"""Langfuse public API: health, trace ingestion and read-back, and the data written before a
pause or a rebuild that must still be there after it.

Shapes follow Langfuse's public API (the OpenAPI definition its SDKs are generated from):
basic auth with the project's public key as user and secret key as password; ingestion answers
207 with {"successes": [{"id", "status"}], "errors": [{"id", "status", "message", "error"}]};
datasets under /api/public/v2/datasets, items under /api/public/dataset-items, prompts under
/api/public/v2/prompts.

Two kinds of data, two stores (decision 24): datasets, their items and runs, and prompts are
PostgreSQL's (`Markers`); traces, observations, scores and dataset run items (what an evaluation
produces) are ClickHouse's, written by the worker from Langfuse's queues, so they read back only
after a while (`Evaluation`, `wait_for_evaluation`).

What an application sends (decision 25): the official Python SDK, langfuse 3.x (`SDK_RANGE`), exports
traces and observations as OpenTelemetry spans (OTLP/HTTP, protobuf) to /api/public/otel/v1/traces
and scores as score-create events to /api/public/ingestion. `send_with_sdk` sends one trace that way
and `follow_sdk_trace` follows it through Langfuse's pipeline stage by stage (accepted by the web,
batch written to S3, processed by the worker, read back complete). langfuse 5.x posts scores as a
JSON array to /api/public/scores, which 3.150 refuses with 400 (`newer_sdk_score_batch`).
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from lfharness.core.wait import WaitTimeout, retry

LOG = logging.getLogger("lfharness.stack.langfuse_api")


class LangfuseApiError(RuntimeError):
    """A call was refused or answered something else than expected; says which call and the server's message."""


def health(base_url: str, timeout: float = 10) -> requests.Response:
    """GET /api/public/health?failIfDatabaseUnavailable=true: 200 only when PostgreSQL answers.

    Without the parameter Langfuse 3.150 answers 200 without touching the database
    (web/src/pages/api/public/health.ts), so a web pod that cannot reach RDS would pass.
    """
    return requests.get(f"{base_url}/api/public/health", params={"failIfDatabaseUnavailable": "true"},
                        timeout=timeout)


EVENT_PREFIX = "events/"  # s3.eventUpload.prefix in terraform/03-app/values.yaml.tpl
OTEL_TRACES_PATH = "/api/public/otel/v1/traces"
SCORES_PATH = "/api/public/scores"


def event_object_key(project_id: str, trace_id: str, event_id: str, prefix: str = EVENT_PREFIX) -> str:
    """Where Langfuse 3.150 stores the raw event of a trace-create before ClickHouse sees it.

    processEventBatch groups a batch's events by entity and body id and writes each group to
    <prefix><projectId>/<entityType>/<bodyId>/<id of the group's first event>.json; a trace-create
    has entity type "trace". One event per batch (ingestion_batch) makes the key exact.
    """
    return f"{prefix}{project_id}/trace/{trace_id}/{event_id}.json"


def iso_timestamp(seconds: float | None = None) -> str:
    """UTC with milliseconds and a Z, as the ingestion schema's datetimes want (an offset is required)."""
    seconds = time.time() if seconds is None else seconds
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int(seconds * 1000) % 1000:03d}Z"


def ingestion_batch(trace_id: str, name: str = "e2e-trace", event_id: str | None = None) -> dict:
    """One trace-create event in the public ingestion API's batch format."""
    return {"batch": [{"id": event_id or str(uuid.uuid4()), "type": "trace-create", "timestamp": iso_timestamp(),
                       "body": {"id": trace_id, "name": name}}]}


def _server_message(resp: requests.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:500]
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or body)[:500]
    return str(body)[:500]


@dataclass(frozen=True)
class Api:
    """The public API of one project, authenticated with its key pair."""

    base_url: str
    public_key: str
    secret_key: str = field(repr=False)  # never in a repr, a log line or an error
    timeout: float = 30

    def _call(self, method: str, path: str, *, what: str, json_body: Any = None,
              params: dict[str, str] | None = None, ok: tuple[int, ...] = (200, 201)) -> requests.Response:
        resp = requests.request(method, f"{self.base_url}{path}", json=json_body, params=params,
                                auth=(self.public_key, self.secret_key), timeout=self.timeout)
        if resp.status_code not in ok:
            raise LangfuseApiError(f"{what}: {method} {path} answered {resp.status_code}, expected {ok}: "
                                   f"{_server_message(resp)}")
        return resp

    # ---- traces -----------------------------------------------------------------------------

    def ingest(self, batch: dict, what: str) -> list[str]:
        """POST /api/public/ingestion; returns the batch's event ids once the server accepted every one.

        The status code alone proves nothing: an invalid event also gets 207 (Langfuse 3.150
        validates event by event: processEventBatch). Success is each of our event ids among
        `successes` and `errors` empty; otherwise the server's message for each refused event is raised.
        """
        event_ids = [event["id"] for event in batch["batch"]]
        resp = self._call("POST", "/api/public/ingestion", what=what, json_body=batch, ok=(200, 207))
        body = resp.json()
        errors = body.get("errors") or []
        if errors:
            # `error` is zod's issue list as indented JSON: on one line, and cut short, in the message.
            raise LangfuseApiError(f"{what}: the server rejected {len(errors)} event(s): " + "; ".join(
                " ".join(f"{e.get('id')}: {e.get('status')} {e.get('message')} {e.get('error') or ''}".split())[:500]
                for e in errors))
        accepted = {s.get("id") for s in body.get("successes") or []}
        missing = [event_id for event_id in event_ids if event_id not in accepted]
        if missing:
            raise LangfuseApiError(f"{what}: answered {resp.status_code} without our event(s) {', '.join(missing)} "
                                   f"among successes (got {sorted(map(str, accepted))})")
        return event_ids

    def ingest_trace(self, trace_id: str, name: str = "e2e-trace") -> str:
        """Sends one trace-create event; returns its event id once the server accepted exactly it."""
        event_id = str(uuid.uuid4())
        self.ingest(ingestion_batch(trace_id, name, event_id), what=f"ingest trace {trace_id}")
        return event_id

    def post(self, path: str, body: Any) -> requests.Response:
        """POST a JSON body to `path` with the project's keys, status unchecked: for the checks that
        expect a refusal (what another client would send)."""
        return requests.post(f"{self.base_url}{path}", json=body, auth=(self.public_key, self.secret_key),
                             timeout=self.timeout)

    def create_score(self, body: dict) -> str:
        """POST /api/public/scores with ONE score object (3.150's PostScoresBody); returns its id."""
        return str(self._call("POST", SCORES_PATH, what=f"create score {body.get('name')}", json_body=body,
                              ok=(200,)).json()["id"])

    def get_trace(self, trace_id: str) -> requests.Response:
        """GET /api/public/traces/{id}, status unchecked (200 readable, 404 not (yet/any more))."""
        return requests.get(f"{self.base_url}/api/public/traces/{quote(trace_id, safe='')}",
                            auth=(self.public_key, self.secret_key), timeout=self.timeout)

    def trace(self, trace_id: str) -> dict | None:
        """The trace with its observations and scores embedded (Langfuse 3.150's GET /api/public/traces/{id}
        reads all three from ClickHouse); None on 404. Anything else is an error, not an answer."""
        resp = self.get_trace(trace_id)
        if resp.status_code not in (200, 404):
            raise LangfuseApiError(f"read trace {trace_id}: answered {resp.status_code}: {_server_message(resp)}")
        return resp.json() if resp.status_code == 200 else None

    def trace_exists(self, trace_id: str) -> bool:
        """True on 200, False on 404; anything else is an error, not an answer."""
        return self.trace(trace_id) is not None

    def _pages(self, path: str, params: dict[str, str], *, what: str, limit: int = 100) -> Iterator[dict]:
        """Every row of a paged list endpoint ({"data", "meta": {"page", "totalPages"}}; limit at most 100)."""
        page = 1
        while True:
            body = self._call("GET", path, what=what, params={**params, "page": str(page), "limit": str(limit)}).json()
            yield from body.get("data") or []
            if page >= int((body.get("meta") or {}).get("totalPages") or 0):
                return
            page += 1

    def observations(self, trace_id: str) -> list[dict]:
        """GET /api/public/observations?traceId=: every observation of the trace (ClickHouse)."""
        return list(self._pages("/api/public/observations", {"traceId": trace_id},
                                what=f"list observations of trace {trace_id}"))

    def scores(self, trace_id: str) -> list[dict]:
        """GET /api/public/v2/scores?traceId=: every score of the trace (ClickHouse). The v1 list
        (/api/public/scores) has no traceId filter in 3.150; v2 has."""
        return list(self._pages("/api/public/v2/scores", {"traceId": trace_id}, what=f"list scores of trace {trace_id}"))

    # ---- datasets and prompts (stored in PostgreSQL) ------------------------------------------

    def create_dataset(self, name: str, description: str) -> dict:
        return self._call("POST", "/api/public/v2/datasets", what=f"create dataset {name}",
                          json_body={"name": name, "description": description}).json()

    def get_dataset(self, name: str) -> dict:
        return self._call("GET", f"/api/public/v2/datasets/{quote(name, safe='')}",
                          what=f"read dataset {name}").json()

    def create_dataset_item(self, dataset: str, item_id: str, item_input: Any, expected_output: Any) -> dict:
        return self._call("POST", "/api/public/dataset-items", what=f"create item {item_id} in {dataset}",
                          json_body={"datasetName": dataset, "id": item_id, "input": item_input,
                                     "expectedOutput": expected_output}).json()

    def get_dataset_item(self, item_id: str) -> dict:
        return self._call("GET", f"/api/public/dataset-items/{quote(item_id, safe='')}",
                          what=f"read dataset item {item_id}").json()

    def create_dataset_run_item(self, run_name: str, item_id: str, trace_id: str) -> dict:
        """POST /api/public/dataset-run-items: links a dataset item to a trace in run `run_name` (the run,
        PostgreSQL, is created on first use). The server picks the run item's id and answers it at once;
        the item itself reaches ClickHouse through the ingestion queue. 404 for an unknown item."""
        return self._call("POST", "/api/public/dataset-run-items", what=f"link item {item_id} to trace {trace_id} "
                          f"in run {run_name}", json_body={"runName": run_name, "datasetItemId": item_id,
                                                           "traceId": trace_id}).json()

    def dataset_run(self, dataset: str, run_name: str) -> dict | None:
        """GET /api/public/datasets/{datasetName}/runs/{runName}: the run (PostgreSQL) with its
        `datasetRunItems` (ClickHouse in 3.150); None on 404."""
        path = f"/api/public/datasets/{quote(dataset, safe='')}/runs/{quote(run_name, safe='')}"
        resp = self._call("GET", path, what=f"read run {run_name} of dataset {dataset}", ok=(200, 404))
        return resp.json() if resp.status_code == 200 else None

    def create_prompt(self, name: str, text: str) -> dict:
        return self._call("POST", "/api/public/v2/prompts", what=f"create prompt {name}",
                          json_body={"type": "text", "name": name, "prompt": text, "labels": []}).json()

    def get_prompt(self, name: str, version: int) -> dict:
        # By version: without one the API serves the "production" label, which ours does not carry.
        return self._call("GET", f"/api/public/v2/prompts/{quote(name, safe='')}",
                          what=f"read prompt {name} v{version}", params={"version": str(version)}).json()


@dataclass(frozen=True)
class Markers:
    """What was written before a rebuild, to be read back after it (PostgreSQL through the API)."""

    dataset: str
    item_id: str
    item_input: dict
    prompt: str
    prompt_text: str
    prompt_version: int


def write_markers(api: Api, run_id: str) -> Markers:
    """A dataset with one item and a prompt, all named after run_id, so only this run can have made them.

    Unlike the headless-init organization, project and user, which Langfuse re-creates at every
    start when missing, these exist after a rebuild only if PostgreSQL kept them.
    """
    dataset, item_id, prompt = f"e2e-survival-{run_id}", f"e2e-item-{run_id}", f"e2e-prompt-{run_id}"
    item_input = {"question": f"survives the rebuild? {run_id}"}
    text = f"Answer {{{{question}}}} ({run_id})"
    api.create_dataset(dataset, "written before the 03-app rebuild by the e2e suite")
    api.create_dataset_item(dataset, item_id, item_input, {"answer": "yes"})
    version = int(api.create_prompt(prompt, text)["version"])
    return Markers(dataset, item_id, item_input, prompt, text, version)


def read_markers(api: Api, markers: Markers) -> dict[str, bool]:
    """Which markers read back exactly as written: {"dataset", "dataset item", "prompt"} -> bool."""
    def matches(read: Callable[[], dict], check: Callable[[dict], bool]) -> bool:
        try:
            return bool(check(read()))
        except LangfuseApiError:
            return False

    return {
        "dataset": matches(lambda: api.get_dataset(markers.dataset), lambda d: d.get("name") == markers.dataset),
        "dataset item": matches(lambda: api.get_dataset_item(markers.item_id),
                                lambda i: (i.get("input"), i.get("datasetName")) == (markers.item_input, markers.dataset)),
        "prompt": matches(lambda: api.get_prompt(markers.prompt, markers.prompt_version),
                          lambda p: p.get("prompt") == markers.prompt_text),
    }


# ---- an evaluation: what Langfuse 3.150 keeps in ClickHouse (decision 24) -----------------------

@dataclass(frozen=True)
class Usage:
    """Token counts of a generation, as Langfuse stores them (usageDetails input / output / total)."""

    input: int
    output: int
    total: int


@dataclass(frozen=True)
class Observation:
    """One observation of the evaluation's trace: its id, type ("SPAN", "GENERATION"), name, parent and,
    for a generation, model and usage."""

    id: str
    type: str
    name: str | None
    trace_id: str | None
    parent_observation_id: str | None
    model: str | None = None
    usage: Usage | None = None


@dataclass(frozen=True)
class Score:
    """A score on the trace (numeric: value is the number)."""

    id: str
    name: str
    value: float
    data_type: str
    trace_id: str | None
    observation_id: str | None = None


@dataclass(frozen=True)
class DatasetRunItem:
    """The evaluation result: a dataset item linked to the trace in a run."""

    id: str
    run_name: str
    dataset_item_id: str
    trace_id: str
    observation_id: str | None = None


@dataclass(frozen=True)
class Evaluation:
    """What an evaluation wrote, or what reads back of it: the same type, so a test compares them equal.

    trace_name is None when the trace does not read back (404); the tuples are sorted by id and
    hold exactly what the list endpoints answer for this trace and run, no more, no less.
    dataset and run_name say where to look (PostgreSQL); the run items are ClickHouse's.
    """

    trace_id: str
    trace_name: str | None
    observations: tuple[Observation, ...]
    scores: tuple[Score, ...]
    dataset: str
    run_name: str
    run_items: tuple[DatasetRunItem, ...]

    def counts(self) -> dict[str, int]:
        """How many of each kind: {"traces", "observations", "scores", "dataset run items"}."""
        return {"traces": int(self.trace_name is not None), "observations": len(self.observations),
                "scores": len(self.scores), "dataset run items": len(self.run_items)}

    def describe(self) -> str:
        return (f"trace {self.trace_id} with {len(self.observations)} observation(s) and {len(self.scores)} "
                f"score(s), {len(self.run_items)} item(s) in run {self.run_name} of dataset {self.dataset}")

    def differences(self, read: Evaluation) -> list[str]:
        """What `read` lacks or holds otherwise than this (as written), one line per kind; [] when equal."""
        lines = []
        if read.trace_name != self.trace_name:
            lines.append(f"trace {self.trace_id}: " + ("not readable" if read.trace_name is None else
                                                        f"named {read.trace_name!r}, written {self.trace_name!r}"))
        kinds: tuple[tuple[str, tuple[Any, ...], tuple[Any, ...]], ...] = (
            ("observations", self.observations, read.observations), ("scores", self.scores, read.scores),
            ("dataset run items", self.run_items, read.run_items))
        return lines + _kind_differences(kinds)


def _kind_differences(kinds: tuple[tuple[str, tuple[Any, ...], tuple[Any, ...]], ...]) -> list[str]:
    """One line per kind whose rows read back otherwise than written (each row has an `id`)."""
    lines = []
    for kind, written, got in kinds:
        if written != got:
            otherwise = [x.id for x in written if x not in got]
            unexpected = [x.id for x in got if x not in written]
            lines.append(f"{kind}: {len(got)} read, {len(written)} written"
                         + (f"; missing or changed: {', '.join(otherwise)}" if otherwise else "")
                         + (f"; not written: {', '.join(unexpected)}" if unexpected else ""))
    return lines


@dataclass(frozen=True)
class _Progress:
    """One read while waiting; its repr (in the wait's log lines) says what is still missing."""

    read: Evaluation | SdkTrace
    written: Evaluation | SdkTrace

    def __repr__(self) -> str:
        # Short: the wait's log lines keep the first 120 characters.
        read, written = self.read.counts(), self.written.counts()
        counts = ", ".join(f"{read[kind]}/{written[kind]} {kind}" for kind in written)
        return f"read {counts}" if self.read != self.written else "as written"


EVALUATION_MODEL = "e2e-model"  # no model Langfuse prices: the usage read back is exactly the usage sent
_CREATE_EVENT = {"SPAN": "span-create", "GENERATION": "generation-create"}


def evaluation_batch(trace_id: str, trace_name: str, observations: tuple[Observation, ...],
                     scores: tuple[Score, ...], started: float | None = None) -> dict:
    """One ingestion batch: trace-create, then an <type>-create per observation (parents first, as
    given), then a score-create per score, each with its own event id.

    Times: the trace at `started`, each observation within the next two seconds, so that Langfuse's
    trace view (observations from the trace's timestamp on) holds every one of them.
    """
    started = time.time() if started is None else started
    events = [{"id": str(uuid.uuid4()), "type": "trace-create", "timestamp": iso_timestamp(started),
               "body": {"id": trace_id, "name": trace_name, "timestamp": iso_timestamp(started)}}]
    for n, obs in enumerate(observations):
        body: dict[str, Any] = {"id": obs.id, "traceId": trace_id, "name": obs.name,
                                "parentObservationId": obs.parent_observation_id,
                                "startTime": iso_timestamp(started + 0.1 * (n + 1)),
                                "endTime": iso_timestamp(started + 2 - 0.1 * (n + 1))}
        if obs.model is not None:
            body["model"] = obs.model
        if obs.usage is not None:
            body["usage"] = {"input": obs.usage.input, "output": obs.usage.output, "total": obs.usage.total,
                             "unit": "TOKENS"}
        events.append({"id": str(uuid.uuid4()), "type": _CREATE_EVENT[obs.type],
                       "timestamp": iso_timestamp(started + 0.1 * (n + 1)), "body": body})
    for score in scores:
        events.append({"id": str(uuid.uuid4()), "type": "score-create", "timestamp": iso_timestamp(started + 2),
                       "body": {"id": score.id, "traceId": score.trace_id, "observationId": score.observation_id,
                                "name": score.name, "value": score.value, "dataType": score.data_type}})
    return {"batch": events}


def write_evaluation(api: Api, run_id: str) -> Evaluation:
    """Writes through the public API what an evaluation produces, named after run_id; returns it.

    One ingestion batch: a trace, a span under it, a generation under the span (model, usage 21 + 34
    = 55 tokens) and a numeric score on the trace; then a dataset with one item and a dataset run
    item linking that item to the trace in run e2e-run-<run_id>. Ids are fresh UUIDs: nothing another
    run wrote can read back as this. Everything but the dataset, its item and the run lands in ClickHouse.
    """
    trace_id, span_id, generation_id, score_id = (str(uuid.uuid4()) for _ in range(4))
    observations = (
        Observation(span_id, "SPAN", f"e2e-retrieve-{run_id}", trace_id, None),
        Observation(generation_id, "GENERATION", f"e2e-answer-{run_id}", trace_id, span_id, EVALUATION_MODEL,
                    Usage(input=21, output=34, total=55)),
    )
    scores = (Score(score_id, "e2e-correctness", 0.875, "NUMERIC", trace_id),)
    trace_name = f"e2e-evaluation-{run_id}"
    api.ingest(evaluation_batch(trace_id, trace_name, observations, scores),
               what=f"ingest evaluation trace {trace_id} (span, generation, score)")
    dataset, item_id, run_name = f"e2e-eval-{run_id}", f"e2e-eval-item-{run_id}", f"e2e-run-{run_id}"
    api.create_dataset(dataset, "evaluation written by the e2e suite before a pause or rebuild")
    api.create_dataset_item(dataset, item_id, {"question": f"kept with ClickHouse's volume? {run_id}"},
                            {"answer": "yes"})
    linked = api.create_dataset_run_item(run_name, item_id, trace_id)
    run_item = DatasetRunItem(str(linked["id"]), run_name, item_id, trace_id)
    written = Evaluation(trace_id, trace_name, tuple(sorted(observations, key=lambda o: o.id)), scores, dataset,
                         run_name, (run_item,))
    LOG.info("evaluation written: %s", written.describe())
    return written


def _usage(details: dict) -> Usage | None:
    # usageDetails is {} for a span; a generation's holds what was sent (Langfuse adds total if absent).
    if not details:
        return None
    return Usage(int(details.get("input", 0)), int(details.get("output", 0)), int(details.get("total", 0)))


def _observation(row: dict) -> Observation:
    return Observation(row["id"], row["type"], row.get("name"), row.get("traceId"), row.get("parentObservationId"),
                       row.get("model"), _usage(row.get("usageDetails") or {}))


def _score(row: dict) -> Score:
    return Score(row["id"], row["name"], float(row["value"]), row["dataType"], row.get("traceId"),
                 row.get("observationId"))


def _run_item(row: dict) -> DatasetRunItem:
    return DatasetRunItem(row["id"], row["datasetRunName"], row["datasetItemId"], row["traceId"],
                          row.get("observationId"))


def read_evaluation(api: Api, written: Evaluation) -> Evaluation:
    """What reads back now of `written`, through Langfuse 3.150's read endpoints:

    GET /api/public/traces/{id} (the trace; 404 -> trace_name None), GET /api/public/observations?traceId=,
    GET /api/public/v2/scores?traceId= and GET /api/public/datasets/{dataset}/runs/{run} (its
    datasetRunItems; a run that is gone reads as no items). One snapshot, no waiting: see wait_for_evaluation.
    """
    trace = api.trace(written.trace_id)
    run = api.dataset_run(written.dataset, written.run_name)
    return Evaluation(
        trace_id=written.trace_id,
        trace_name=trace.get("name") if trace is not None else None,
        observations=tuple(sorted(map(_observation, api.observations(written.trace_id)), key=lambda o: o.id)),
        scores=tuple(sorted(map(_score, api.scores(written.trace_id)), key=lambda s: s.id)),
        dataset=written.dataset,
        run_name=written.run_name,
        run_items=tuple(sorted(map(_run_item, (run or {}).get("datasetRunItems") or []), key=lambda i: i.id)),
    )


def wait_for_evaluation(api: Api, written: Evaluation, *, timeout: float = 300, interval: float = 10) -> Evaluation:
    """Reads `written` back until it reads back exactly (ingestion is asynchronous: the worker writes
    to ClickHouse seconds after the API accepted), for at most `timeout` seconds.

    Returns the last read either way: equal to `written` when complete, otherwise what is there, so
    the caller's `assert read == written` fails with the difference (the timeout is logged as a warning
    naming what was awaited). Server errors and refused connections count as "not yet".
    """
    what = f"evaluation read back as written: {written.describe()}"
    try:
        return retry(lambda: _Progress(read_evaluation(api, written), written), timeout=timeout, interval=interval,
                     what=what, validator=lambda progress: progress.read == written,
                     retry_on=(LangfuseApiError, requests.RequestException)).read
    except WaitTimeout as exc:
        LOG.warning("%s", exc)
        read = read_evaluation(api, written)
        LOG.warning("read back instead: %s", "; ".join(written.differences(read)) or "as written (just now)")
        return read


# ---- the official Python SDK: what an instrumented application sends (decision 25) --------------

SDK_RANGE = ">=3.15,<4"  # the majors Langfuse 3.150 serves fully; pyproject.toml pins the one tested
SDK_SCORE_NAME = "e2e-correctness"
SDK_USAGE = Usage(input=21, output=34, total=55)
# The stages an SDK trace passes in Langfuse 3.150, in order (follow_sdk_trace names the one that stopped).
PIPELINE = ("accepted by the web", "batch written to S3", "processed by the worker", "read back complete")


class PipelineStopped(LangfuseApiError):
    """An SDK trace did not get through a stage of Langfuse's pipeline; `stage` is one of PIPELINE."""

    def __init__(self, stage: str, detail: str) -> None:
        super().__init__(f"stopped at '{stage}': {detail}")
        self.stage = stage


@dataclass(frozen=True)
class SdkTrace:
    """What the SDK sent, or what reads back of it: the same type, so a test compares them equal.

    trace_name is None when the trace does not read back (404); the tuples are sorted by id and
    hold exactly what the list endpoints answer for this trace.
    """

    trace_id: str
    trace_name: str | None
    observations: tuple[Observation, ...]
    scores: tuple[Score, ...]

    def counts(self) -> dict[str, int]:
        """How many of each kind: {"traces", "observations", "scores"}."""
        return {"traces": int(self.trace_name is not None), "observations": len(self.observations),
                "scores": len(self.scores)}

    def describe(self) -> str:
        kinds = ", ".join(sorted(o.type for o in self.observations))
        return (f"trace {self.trace_id} with {len(self.observations)} observation(s) ({kinds}) and "
                f"{len(self.scores)} score(s)")

    def differences(self, read: SdkTrace) -> list[str]:
        """What `read` lacks or holds otherwise than this (as sent), one line per kind; [] when equal."""
        lines = []
        if read.trace_name != self.trace_name:
            lines.append(f"trace {self.trace_id}: " + ("not readable" if read.trace_name is None else
                                                        f"named {read.trace_name!r}, sent {self.trace_name!r}"))
        return lines + _kind_differences((("observations", self.observations, read.observations),
                                          ("scores", self.scores, read.scores)))


@dataclass(frozen=True)
class SdkSent:
    """One SDK session's outcome: what it sent, when it started (epoch seconds: where to look for its
    S3 object), the SDK's version and the problems it met. The SDK only logs a refused export or
    score batch; `problems` collects those (the OTLP exporter's and the SDK's errors, and every
    ingestion answer that was not a clean 2xx): () means the web accepted everything."""

    written: SdkTrace
    started: float
    sdk_version: str
    problems: tuple[str, ...] = ()


class _ErrorLog(logging.Handler):
    """Collects the error records of the SDK and its OpenTelemetry exporter while a session runs."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {record.getMessage()}"[:500])


# The SDK keeps one resource manager per public key for the process' life (langfuse 3.x's
# LangfuseResourceManager), and shutdown() does not drop it: a second client with the same key
# would reuse the shut-down exporter and send nothing, without an error. So: one session per key.
_SDK_SESSIONS: set[str] = set()
_SDK_SESSIONS_LOCK = threading.Lock()
# Environment settings that would make the SDK send elsewhere or not at all, whatever it is given.
_SDK_REDIRECTS = ("LANGFUSE_OTEL_TRACES_EXPORT_PATH", "OTEL_SDK_DISABLED")


def _sdk_environment_problems() -> list[str]:
    problems = [f"{name} is set" for name in _SDK_REDIRECTS
                if os.environ.get(name) and (name != "OTEL_SDK_DISABLED" or os.environ[name].lower() == "true")]
    if os.environ.get("LANGFUSE_TRACING_ENABLED", "true").lower() == "false":
        problems.append("LANGFUSE_TRACING_ENABLED=false")
    return problems


def _sdk_threads(before: set[threading.Thread]) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t not in before and type(t).__module__.startswith("langfuse")]


def _pause_sdk_threads(before: set[threading.Thread]) -> list[threading.Thread]:
    started = _sdk_threads(before)
    for thread in started:
        pause = getattr(thread, "pause", None)  # the SDK's consumer threads stop with pause()
        if callable(pause):
            pause()
    return started


def _stop_sdk_threads(before: set[threading.Thread]) -> list[str]:
    """Stops what the SDK's shutdown() leaves running: its prompt cache's refresh thread, which 3.x
    stops only at interpreter exit (this session fetches no prompt, so it has nothing to do). Returns
    the names of SDK threads still alive after that (none expected), after 5 s at most in all: each
    stuck thread does not add its own wait to the e2e run."""
    started = _pause_sdk_threads(before)
    deadline = time.monotonic() + 5
    for thread in started:
        thread.join(timeout=max(deadline - time.monotonic(), 0))
    return [f"{t.name} ({type(t).__name__})" for t in started if t.is_alive()]


def _bypass_proxies(base_url: str) -> Callable[[], None]:
    """Adds base_url's host to NO_PROXY / no_proxy; returns what puts both back. The SDK's OTLP span
    exporter sends with requests, which takes HTTP(S)_PROXY from the environment (its score client,
    httpx, is ours and told not to): the port-forward is local, and a proxy is another host that cannot
    reach it (with a shell's proxy set, every span went to the proxy and was refused there)."""
    host = urlsplit(base_url).hostname or ""
    saved = {name: os.environ.get(name) for name in ("NO_PROXY", "no_proxy")}
    current = saved["no_proxy"] or saved["NO_PROXY"] or ""
    value = ",".join([entry for entry in current.split(",") if entry.strip()] + [host])
    for name in saved:
        os.environ[name] = value

    def restore() -> None:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old
    return restore


def send_with_sdk(base_url: str, public_key: str, secret_key: str, run_id: str, *, timeout: int = 20,
                  flush_interval: float = 1.0) -> SdkSent:
    """Sends through the official SDK what an instrumented agent sends, then flush() and shutdown():

    a trace e2e-sdk-<run_id> whose root span e2e-agent-<run_id> holds a span e2e-retrieve-<run_id> and
    a generation e2e-answer-<run_id> (model EVALUATION_MODEL, usage 21 + 34 = 55 tokens), and a NUMERIC
    score e2e-correctness 0.875 on the trace. Returns what was sent (ids as the SDK made them) with
    the problems the SDK met (see SdkSent).

    Nothing but `base_url` is contacted: the host is given explicitly (LANGFUSE_HOST / LANGFUSE_BASE_URL
    cannot redirect it), the tracer provider is this session's own (not the process-wide one, so its
    export thread ends with it), the HTTP client is ours and closed here, and the SDK's threads are
    stopped (its consumers by shutdown(), the prompt cache's refresh thread here).
    """
    # Imported here: the SDK loads OpenTelemetry, httpx and pydantic (about a second), and only the
    # trace stages use it, not the operator commands that import this module.
    import httpx  # noqa: PLC0415
    from langfuse import Langfuse  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415

    refused = _sdk_environment_problems()
    if refused:
        raise LangfuseApiError("the SDK would not send to Langfuse: " + "; ".join(refused))
    with _SDK_SESSIONS_LOCK:
        if public_key in _SDK_SESSIONS:
            raise LangfuseApiError(f"one SDK session per public key and process: {public_key} was used already "
                                   "(langfuse 3.x keeps its shut-down exporter for that key)")
        _SDK_SESSIONS.add(public_key)
    problems: list[str] = []

    def watch(response: httpx.Response) -> None:
        # The SDK's own score client drops a 4xx answer without a word: the answer is read here.
        if not response.request.url.path.endswith("/api/public/ingestion"):
            return
        response.read()
        try:
            rejected = (response.json().get("errors") or []) if response.status_code == 207 else []
        except ValueError:
            rejected = []
        if response.status_code not in (200, 201, 207) or rejected:
            problems.append(f"POST /api/public/ingestion answered {response.status_code}: {response.text[:300]}")

    errors = _ErrorLog()
    loggers = [logging.getLogger("langfuse"), logging.getLogger("opentelemetry")]
    for logger in loggers:
        logger.addHandler(errors)
    before = set(threading.enumerate())
    provider = TracerProvider()
    # No proxy from the environment: the port-forward is local, and a proxy would be another host.
    http = httpx.Client(timeout=timeout, event_hooks={"response": [watch]}, trust_env=False)
    started = time.time()
    trace_name = f"e2e-sdk-{run_id}"
    score_id = str(uuid.uuid4())
    restore_proxies = _bypass_proxies(base_url)
    try:
        client = Langfuse(public_key=public_key, secret_key=secret_key, base_url=base_url, timeout=timeout,
                          tracer_provider=provider, httpx_client=http, flush_interval=flush_interval,
                          sample_rate=1.0)
        try:
            with client.start_as_current_observation(name=f"e2e-agent-{run_id}", as_type="span") as agent:
                agent.update_trace(name=trace_name)
                with agent.start_as_current_observation(name=f"e2e-retrieve-{run_id}", as_type="span") as retrieve:
                    retrieve.update(input={"question": f"what does the SDK send? {run_id}"},
                                    output={"documents": 2})
                with agent.start_as_current_observation(
                        name=f"e2e-answer-{run_id}", as_type="generation", model=EVALUATION_MODEL,
                        usage_details={"input": SDK_USAGE.input, "output": SDK_USAGE.output,
                                       "total": SDK_USAGE.total}) as generation:
                    generation.update(output="spans over OTLP, scores through ingestion")
                client.create_score(name=SDK_SCORE_NAME, value=0.875, trace_id=agent.trace_id, score_id=score_id,
                                    data_type="NUMERIC")
            client.flush()
            # The SDK's threads poll their queues once a second and shutdown() stops them one after
            # another; told to stop together now (the queues are empty after flush()), they end in one.
            _pause_sdk_threads(before)
        finally:
            client.shutdown()
    finally:
        provider.shutdown()  # ends the batch span processor's export thread
        http.close()
        for logger in loggers:
            logger.removeHandler(errors)
        left = _stop_sdk_threads(before)
        if left:
            LOG.warning("SDK threads still running after shutdown: %s", ", ".join(left))
        restore_proxies()
    trace_id = agent.trace_id
    observations = (
        Observation(agent.id, "SPAN", f"e2e-agent-{run_id}", trace_id, None),
        Observation(retrieve.id, "SPAN", f"e2e-retrieve-{run_id}", trace_id, agent.id),
        Observation(generation.id, "GENERATION", f"e2e-answer-{run_id}", trace_id, agent.id, EVALUATION_MODEL,
                    SDK_USAGE),
    )
    written = SdkTrace(trace_id, trace_name, tuple(sorted(observations, key=lambda o: o.id)),
                       (Score(score_id, SDK_SCORE_NAME, 0.875, "NUMERIC", trace_id),))
    sent = SdkSent(written, started, importlib.metadata.version("langfuse"), tuple(problems + errors.lines))
    LOG.info("sent with langfuse %s: %s%s", sent.sdk_version, written.describe(),
             f"; problems: {'; '.join(sent.problems)}" if sent.problems else "")
    return sent


def read_sdk_trace(api: Api, written: SdkTrace) -> SdkTrace:
    """What reads back now of `written`: GET /api/public/traces/{id} (404 -> trace_name None),
    GET /api/public/observations?traceId=, GET /api/public/v2/scores?traceId=. No waiting."""
    trace = api.trace(written.trace_id)
    return SdkTrace(
        trace_id=written.trace_id,
        trace_name=trace.get("name") if trace is not None else None,
        observations=tuple(sorted(map(_observation, api.observations(written.trace_id)), key=lambda o: o.id)),
        scores=tuple(sorted(map(_score, api.scores(written.trace_id)), key=lambda s: s.id)),
    )


def otel_batch_prefixes(project_id: str, since: float, until: float, prefix: str = EVENT_PREFIX) -> list[str]:
    """The S3 prefixes where Langfuse 3.150's web writes the OTel batches it accepted between `since`
    and `until` (epoch seconds): <prefix>otel/<projectId>/<yyyy>/<mm>/<dd>/<hh>/ for each hour, UTC
    (OtelIngestionProcessor.publishToOtelIngestionQueue; the container's clock is UTC)."""
    hours = range(int(since - 60) // 3600, int(until) // 3600 + 1)
    return [f"{prefix}otel/{project_id}/" + time.strftime("%Y/%m/%d/%H/", time.gmtime(hour * 3600)) for hour in hours]


def otel_batch_trace_ids(body: bytes) -> set[str]:
    """The trace ids (hex) of the spans in one stored OTel batch: the resourceSpans array as the web
    wrote it (from protobuf: ids as {"type": "Buffer", "data": [...]}; from OTLP/JSON: hex strings).
    An object that is not such a batch holds none."""
    try:
        resource_spans = json.loads(body)
    except ValueError:
        return set()
    found: set[str] = set()
    for resource_span in resource_spans if isinstance(resource_spans, list) else []:
        for scope_span in (resource_span or {}).get("scopeSpans") or []:
            for span in (scope_span or {}).get("spans") or []:
                value = span.get("traceId")
                value = value.get("data") if isinstance(value, dict) else value
                if isinstance(value, str):
                    found.add(value.lower())
                elif isinstance(value, list) and all(isinstance(b, int) and 0 <= b < 256 for b in value):
                    found.add(bytes(value).hex())
    return found


def wait_for_sdk_trace(api: Api, written: SdkTrace, *, timeout: float = 300, interval: float = 10) -> SdkTrace:
    """Reads `written` back until it reads back exactly, for at most `timeout` seconds; returns the
    last read either way (the caller's `assert read == written` shows the difference)."""
    what = f"SDK trace read back as sent: {written.describe()}"
    try:
        return retry(lambda: _Progress(read_sdk_trace(api, written), written), timeout=timeout, interval=interval,
                     what=what, validator=lambda progress: progress.read == written,
                     retry_on=(LangfuseApiError, requests.RequestException)).read
    except WaitTimeout as exc:
        LOG.warning("%s", exc)
        return read_sdk_trace(api, written)


def follow_sdk_trace(api: Api, sent: SdkSent, otel_batches: Callable[[], dict[str, bytes]], *,
                     timeout: float = 300, interval: float = 10) -> SdkTrace:
    """Follows an SDK trace through Langfuse's pipeline, each wait naming its stage (PIPELINE):

    1. accepted by the web: the SDK met no refusal (SdkSent.problems is empty);
    2. batch written to S3: an object from `otel_batches()` (key -> body, the OTel batches stored
       since the send) holds the trace's spans: the web uploads the batch before it queues it;
    3. processed by the worker: GET /api/public/traces/{id} answers 200;
    4. read back complete: the trace, its observations (ids, types, names, nesting, model, usage)
       and its score read back exactly as sent.

    Each wait has `timeout` seconds. Returns the read-back; raises PipelineStopped naming the stage
    that stopped and what was last seen.
    """
    trace_id = sent.written.trace_id
    if sent.problems:
        raise PipelineStopped(PIPELINE[0], "; ".join(sent.problems))
    try:
        keys = retry(lambda: sorted(k for k, body in otel_batches().items() if trace_id in otel_batch_trace_ids(body)),
                     timeout=timeout, interval=interval, validator=bool,
                     what=f"an OTel batch holding trace {trace_id} in S3 (events/otel/)")
        LOG.info("trace %s: OTel batch %s", trace_id, ", ".join(keys))
    except WaitTimeout as exc:
        raise PipelineStopped(PIPELINE[1], str(exc)) from None
    try:
        retry(lambda: api.trace_exists(trace_id), timeout=timeout, interval=interval, validator=bool,
              what=f"the worker's processing of trace {trace_id} (GET /api/public/traces/{{id}} 200)",
              retry_on=(LangfuseApiError, requests.RequestException))
    except WaitTimeout as exc:
        raise PipelineStopped(PIPELINE[2], str(exc)) from None
    read = wait_for_sdk_trace(api, sent.written, timeout=timeout, interval=interval)
    if read != sent.written:
        raise PipelineStopped(PIPELINE[3], "; ".join(sent.written.differences(read)))
    return read


def newer_sdk_score_batch(trace_id: str) -> list[dict]:
    """What langfuse 5.x's score consumer POSTs to /api/public/scores: a JSON ARRAY of score objects
    (langfuse/_task_manager/score_consumer.py: api.scores.create(request=[...])). Langfuse 3.150 parses
    one object there (PostScoresBody) and answers 400: that SDK's scores never arrive."""
    return [{"id": str(uuid.uuid4()), "name": SDK_SCORE_NAME, "value": 0.875, "traceId": trace_id,
             "dataType": "NUMERIC", "environment": "default"}]
