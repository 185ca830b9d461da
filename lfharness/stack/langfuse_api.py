"""Langfuse public API: health, trace ingestion and read-back, and the data written before a
rebuild that must still be there after it.

Shapes follow Langfuse's public API (the OpenAPI definition its SDKs are generated from):
basic auth with the project's public key as user and secret key as password; ingestion answers
207 with {"successes": [{"id", "status"}], "errors": [{"id", "status", "message", "error"}]};
datasets under /api/public/v2/datasets, items under /api/public/dataset-items, prompts under
/api/public/v2/prompts.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests


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


def event_object_key(project_id: str, trace_id: str, event_id: str, prefix: str = EVENT_PREFIX) -> str:
    """Where Langfuse 3.150 stores the raw event of a trace-create before ClickHouse sees it.

    processEventBatch groups a batch's events by entity and body id and writes each group to
    <prefix><projectId>/<entityType>/<bodyId>/<id of the group's first event>.json; a trace-create
    has entity type "trace". One event per batch (ingestion_batch) makes the key exact.
    """
    return f"{prefix}{project_id}/trace/{trace_id}/{event_id}.json"


def ingestion_batch(trace_id: str, name: str = "e2e-trace", event_id: str | None = None) -> dict:
    """One trace-create event in the public ingestion API's batch format."""
    return {"batch": [{"id": event_id or str(uuid.uuid4()), "type": "trace-create",
                       "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
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

    def ingest_trace(self, trace_id: str, name: str = "e2e-trace") -> str:
        """Sends one trace-create event; returns its event id once the server accepted exactly it.

        The status code alone proves nothing: an invalid event also gets 207. Success is our
        event id among `successes` and `errors` empty; otherwise the server's message is raised.
        """
        event_id = str(uuid.uuid4())
        resp = self._call("POST", "/api/public/ingestion", what=f"ingest trace {trace_id}",
                          json_body=ingestion_batch(trace_id, name, event_id), ok=(200, 207))
        body = resp.json()
        errors = body.get("errors") or []
        if errors:
            raise LangfuseApiError(f"ingest trace {trace_id}: the server rejected {len(errors)} event(s): " + "; ".join(
                f"{e.get('id')}: {e.get('status')} {e.get('message')} {e.get('error') or ''}".strip() for e in errors))
        accepted = {s.get("id") for s in body.get("successes") or []}
        if event_id not in accepted:
            raise LangfuseApiError(f"ingest trace {trace_id}: answered {resp.status_code} without our event "
                                   f"{event_id} among successes (got {sorted(map(str, accepted))})")
        return event_id

    def get_trace(self, trace_id: str) -> requests.Response:
        """GET /api/public/traces/{id}, status unchecked (200 readable, 404 not (yet/any more))."""
        return requests.get(f"{self.base_url}/api/public/traces/{trace_id}", auth=(self.public_key, self.secret_key),
                            timeout=self.timeout)

    def trace_exists(self, trace_id: str) -> bool:
        """True on 200, False on 404; anything else is an error, not an answer."""
        resp = self.get_trace(trace_id)
        if resp.status_code not in (200, 404):
            raise LangfuseApiError(f"read trace {trace_id}: answered {resp.status_code}: {_server_message(resp)}")
        return resp.status_code == 200

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
