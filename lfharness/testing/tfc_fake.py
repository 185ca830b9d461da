"""A small HTTPS fake of the Terraform Cloud API, for tests that must not reach the real one.

Why one file of ~1000 lines: its routes share one store and one JSON:API document shape;
split, each piece would import the others. The route table (`ROUTES`) is the index to read first.

It serves the documented JSON:API endpoints (content type application/vnd.api+json)
that three clients use:

* the `tfe` provider (go-tfe) behind `data "tfe_outputs"` in terraform-provider-tfe
  v0.79.0: service discovery (`tfe.v2.2`), `GET /api/v2/ping` (go-tfe reads the
  rate-limit and version headers from it), `GET /api/v2/organizations/{org}/workspaces/{name}?include=outputs`
  (included `workspace-outputs`, sensitive values null), then
  `GET /api/v2/state-version-outputs/{id}` for each sensitive output;
* `lfharness.core.tfc.TfcClient`: workspaces (read, create, update), force-unlock, remote
  state consumers, current state version and its outputs, and the raw state behind the
  version's `hosted-state-download-url` (served like a signed URL: no token needed);
* Terraform's own `cloud` block (go-tfe inside Terraform, read in internal/cloud of Terraform
  1.11 to 1.15), for a workspace in local execution mode: init reads service discovery (`tfe.v2`),
  `GET /api/v2/organizations/{org}/entitlement-set` and the workspace by name; every command
  that takes the state lock `POST .../workspaces/{id}/actions/lock` (409 while locked: go-tfe's
  "workspace already locked", which Terraform retries until `-lock-timeout`, then fails with
  "Error acquiring the state lock") and `.../actions/unlock` at its end (409 when not locked);
  state is read as the current state version and its download URL, and written as
  `POST /api/v2/workspaces/{id}/state-versions` (only while the workspace is locked, as the API
  requires) answered with `hosted-state-upload-url` / `hosted-json-state-upload-url`, to which
  Terraform PUTs the raw state without a token; once the raw state is there (its MD5 checked
  against the one declared) it becomes the current state version, and its outputs, typed as the
  state types them, what `terraform output` and downstream `tfe_outputs` read (sensitive values
  only through `GET /api/v2/state-version-outputs/{id}`). A state version created with the state
  inline (go-tfe's fallback for servers without upload URLs) is accepted too.

State sharing is modelled the way Terraform Cloud enforces it for run tokens: a
token from `run_token(name)` acts as that workspace and sees another workspace's
outputs only if that workspace shares its state (global-remote-state, or the reader
is one of its remote-state-consumers). Otherwise the included outputs are silently
empty, which is what makes `tfe_outputs` return an empty object (decision 12).
The operator's token (the one given to the constructor) sees everything.

Locks are workspace-wide, as in Terraform Cloud: whoever holds the workspace's lock may unlock it;
`force-unlock` (the harness's client, `terraform force-unlock`) releases it whoever holds it.

Layout: `_Store` holds the state; the endpoints are a route table (`ROUTES`: method and path
pattern -> a small handler function), the handlers grouped by resource (organizations, workspaces,
locks, remote-state consumers, state versions, outputs); `_dispatch` authenticates and routes one
call; the HTTP side is `httpserver.LocalServer` with one request handler, which also serves the
unauthenticated "archivist" URLs the state is uploaded to and downloaded from.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

from lfharness.testing import httpserver
from lfharness.testing.localca import CaFiles

log = logging.getLogger(__name__)

JSONAPI = "application/vnd.api+json"
API = "/api/v2"

# Terraform's and the provider's service discovery document. The provider v0.79.0 asks
# only for "tfe.v2.2"; Terraform's `cloud` block asks for "tfe.v2". No "versions.v1":
# without it the provider skips its optional version-constraint check.
DISCOVERY: dict[str, str] = {
    "tfe.v2": f"{API}/",
    "tfe.v2.1": f"{API}/",
    "tfe.v2.2": f"{API}/",
    "modules.v1": "/api/registry/v1/modules/",
    "state.v2": f"{API}/",
}

# Headers every /api response carries; go-tfe's NewClient reads them from /ping.
API_HEADERS: dict[str, str] = {
    "TFP-API-Version": "2.6",
    "TFP-AppName": "HCP Terraform",  # go-tfe's IsCloud() compares against this
    "X-RateLimit-Limit": "30",
    "X-RateLimit-Remaining": "30",
    "X-RateLimit-Reset": "0.0",
}

_EXECUTION_MODES = ("remote", "local", "agent")
# What Terraform Cloud gives a new workspace, for the attributes clients here read.
_WORKSPACE_DEFAULTS: dict[str, Any] = {
    "execution-mode": "remote",
    "operations": True,  # deprecated twin of execution-mode
    "global-remote-state": False,
    "project-remote-state": False,
    "auto-apply": False,
    "locked": False,
    "terraform-version": "latest",
    "resource-count": 0,
    "source": "tfe-api",
    "tag-names": [],
    "actions": {"is-destroyable": True},
}
_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,90}")


class _ApiError(Exception):
    """An error answered as a JSON:API error document."""

    def __init__(self, status: HTTPStatus, title: str, detail: str | None = None, pointer: str | None = None):
        super().__init__(title)
        self.status = status
        self.title = title
        self.detail = detail
        self.pointer = pointer

    def document(self) -> dict[str, Any]:
        err: dict[str, Any] = {"status": str(self.status.value), "title": self.title}
        if self.detail:
            err["detail"] = self.detail
        if self.pointer:
            err["source"] = {"pointer": self.pointer}
        return {"errors": [err]}


def _not_found() -> _ApiError:
    # Terraform Cloud answers 404 both for "missing" and for "not allowed to see".
    return _ApiError(HTTPStatus.NOT_FOUND, "not found")


def _invalid(detail: str, attribute: str) -> _ApiError:
    return _ApiError(HTTPStatus.UNPROCESSABLE_ENTITY, "invalid attribute", detail, f"/data/attributes/{attribute}")


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(8)}"


def _json_type(value: Any) -> str:
    """The JSON type name Terraform Cloud reports in an output's `type`."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def _terraform_type(value: Any) -> Any:
    """The Terraform type (as in `terraform output -json`) reported in `detailed-type`."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return ["tuple", [_terraform_type(v) for v in value]]
    if isinstance(value, dict):
        return ["object", {k: _terraform_type(v) for k, v in value.items()}]
    return "dynamic"


@dataclass
class _Output:
    id: str
    name: str
    value: Any
    sensitive: bool
    # The Terraform type the state gives the output (e.g. ["list", "string"]); None: derived from
    # the value (`_terraform_type`), for outputs seeded without a state.
    detailed_type: Any = None


@dataclass
class _PendingVersion:
    """A state version created without its state: it waits for the raw state's upload (PUT)."""

    id: str
    workspace_id: str
    serial: int
    md5: str
    lineage: str | None


@dataclass
class _Workspace:
    id: str
    organization: str
    attributes: dict[str, Any]
    consumers: list[str] = field(default_factory=list)  # workspace ids allowed to read our state
    state_version: str | None = None
    serial: int = 0
    outputs: list[_Output] = field(default_factory=list)
    outputs_processing: int = 0  # reads of the current outputs still to answer 503 (async processing)
    unlock_refused: int | None = None  # force-unlock answers this status (e.g. 403: the token may not)
    raw_state: dict[str, Any] | None = None  # the terraform.tfstate document behind the current version
    lock_reason: str | None = None  # what the lock's holder said when it took it
    variables: list[dict[str, Any]] = field(default_factory=list)  # workspace variables: their `attributes` + id
    one_variable_per_apply: bool = False  # a sink for many copies' applies: a key may repeat (see TfcFake)

    @property
    def name(self) -> str:
        return str(self.attributes["name"])

    def update(self, attrs: dict[str, Any]) -> None:
        self.attributes.update(attrs)
        if "execution-mode" in attrs:
            # `operations` is the deprecated twin of execution-mode; keep them consistent.
            self.attributes["operations"] = attrs["execution-mode"] != "local"
        self.attributes["updated-at"] = _now()


@dataclass(frozen=True)
class _Caller:
    """Who is calling: the operator (sees all) or a workspace's run token."""

    workspace_id: str | None = None

    def can_read_state(self, ws: _Workspace) -> bool:
        if self.workspace_id is None or self.workspace_id == ws.id:
            return True
        return bool(ws.attributes.get("global-remote-state")) or self.workspace_id in ws.consumers

    def readable_state(self, ws: _Workspace) -> str:
        """The workspace's current state version id, or 404 when there is none or it is not shared with us."""
        if ws.state_version is None or not self.can_read_state(ws):
            raise _not_found()
        return ws.state_version


@dataclass(frozen=True)
class _Request:
    """One authenticated API call as a handler sees it: the path's parameters (unquoted), query and body."""

    caller: _Caller
    params: dict[str, str]
    query: dict[str, list[str]]
    doc: dict[str, Any] | None

    def includes(self) -> set[str]:
        """The `include` query parameter's members (JSON:API: comma-separated, possibly repeated)."""
        return {i.strip() for v in self.query.get("include", []) for i in v.split(",") if i.strip()}


@dataclass
class _Response:
    status: HTTPStatus
    body: dict[str, Any] | None = None


class _Store:
    """The fake's state, free of HTTP plumbing. Handlers run with `lock` held; so must any other access."""

    def __init__(self, token: str, organization: str) -> None:
        self._token = token
        self.organization = organization
        self.lock = threading.Lock()
        self.workspaces: dict[str, _Workspace] = {}
        self.run_tokens: dict[str, str] = {}  # token -> workspace id
        self.pending: dict[str, _PendingVersion] = {}  # state versions waiting for their upload
        self.uploaded: set[str] = set()  # versions whose raw state came: their JSON rendering may follow
        self.calls: list[tuple[str, str]] = []
        self.base_url = ""  # set when the server starts: absolute download URLs need it

    def authenticate(self, authorization: str | None) -> _Caller:
        scheme, _, presented = (authorization or "").partition(" ")
        if scheme == "Bearer" and presented:
            # Constant-time compare: a fake need not resist timing attacks, but it costs nothing.
            if hmac.compare_digest(presented.encode(), self._token.encode()):
                return _Caller()
            with self.lock:
                for run_token, ws_id in self.run_tokens.items():
                    if hmac.compare_digest(presented.encode(), run_token.encode()):
                        return _Caller(workspace_id=ws_id)
        raise _ApiError(HTTPStatus.UNAUTHORIZED, "unauthorized")

    # ---- lookups (caller holds the lock) -----------------------------------------------

    def org(self, org: str) -> str:
        if org != self.organization:
            raise _not_found()
        return org

    def by_name(self, org: str, name: str) -> _Workspace | None:
        return next((w for w in self.workspaces.values() if w.organization == org and w.name == name), None)

    def workspace(self, params: Mapping[str, str]) -> _Workspace:
        """The workspace a path names: `org` and `name`, or `ws_id`."""
        if "name" in params:
            ws = self.by_name(self.org(params["org"]), params["name"])
        else:
            ws = self.workspaces.get(params["ws_id"])
        if ws is None:
            raise _not_found()
        return ws

    def by_state_version(self, sv_id: str) -> _Workspace | None:
        return next((w for w in self.workspaces.values() if w.state_version == sv_id), None)

    def output(self, out_id: str) -> tuple[_Workspace, _Output]:
        for ws in self.workspaces.values():
            for out in ws.outputs:
                if out.id == out_id:
                    return ws, out
        raise _not_found()

    # ---- changes (caller holds the lock) -----------------------------------------------

    def create_workspace(self, org: str, attrs: dict[str, Any]) -> _Workspace:
        now = _now()
        ws = _Workspace(
            id=_new_id("ws"),
            organization=org,
            attributes={**copy.deepcopy(_WORKSPACE_DEFAULTS), "name": attrs["name"], "created-at": now,
                        "updated-at": now},
        )
        ws.update(attrs)
        self.workspaces[ws.id] = ws
        log.info("TFC fake: created workspace %s/%s (%s)", org, ws.name, ws.id)
        return ws

    def raw_state(self, sv_id: str) -> dict[str, Any] | None:
        with self.lock:
            ws = self.by_state_version(sv_id)
            return copy.deepcopy(ws.raw_state) if ws is not None else None

    def install_state(self, ws: _Workspace, state: Mapping[str, Any], sv_id: str | None = None) -> None:
        """Makes a terraform.tfstate document (format 4) the workspace's current state version: its
        outputs (typed as the state types them; Terraform stores no null output) become the
        version's, the document what its download URL serves."""
        ws.serial = int(state.get("serial") or ws.serial + 1)
        ws.state_version = sv_id or _new_id("sv")
        ws.outputs = [_Output(_new_id("wsout"), name, copy.deepcopy(out.get("value")), bool(out.get("sensitive")),
                              copy.deepcopy(out.get("type")))
                      for name, out in (state.get("outputs") or {}).items()]
        ws.raw_state = copy.deepcopy(dict(state))
        ws.attributes["resource-count"] = sum(len(r.get("instances", [])) for r in state.get("resources", [])
                                              if r.get("mode") == "managed")
        ws.attributes["updated-at"] = _now()

    def receive_upload(self, sv_id: str, body: bytes) -> HTTPStatus:
        """The raw state PUT to a pending version's upload URL: checked against the MD5 declared at
        creation, then the workspace's current state version. 404 for an unknown or finished upload."""
        with self.lock:
            pending = self.pending.get(sv_id)
            if pending is None:
                return HTTPStatus.NOT_FOUND
            if hashlib.md5(body, usedforsecurity=False).hexdigest() != pending.md5:
                log.warning("TFC fake: upload for %s does not match its declared MD5", sv_id)
                return HTTPStatus.BAD_REQUEST
            try:
                state = json.loads(body)
            except json.JSONDecodeError:
                return HTTPStatus.BAD_REQUEST
            ws = self.workspaces[pending.workspace_id]
            del self.pending[sv_id]
            self.uploaded.add(sv_id)
            self.install_state(ws, state, sv_id)
        log.info("TFC fake: %s has a new state version %s (serial %s)", ws.name, sv_id, ws.serial)
        return HTTPStatus.OK

    def expects_json_upload(self, sv_id: str) -> bool:
        """go-tfe PUTs the raw state and its JSON rendering at the same time: either may come first."""
        with self.lock:
            return sv_id in self.pending or sv_id in self.uploaded


# ---- documents ------------------------------------------------------------------------------

def _workspace_doc(ws: _Workspace, caller: _Caller) -> dict[str, Any]:
    visible = ws.outputs if caller.can_read_state(ws) else []
    sv = {"id": ws.state_version, "type": "state-versions"} if ws.state_version else None
    return {
        "id": ws.id,
        "type": "workspaces",
        "attributes": copy.deepcopy(ws.attributes),
        "relationships": {
            # go-tfe's tfe_outputs path dereferences Organization.Name: always present.
            "organization": {"data": {"id": ws.organization, "type": "organizations"}},
            "current-state-version": {"data": sv},
            "outputs": {"data": [{"id": o.id, "type": "workspace-outputs"} for o in visible]},
            "remote-state-consumers": {
                "links": {"related": f"{API}/workspaces/{ws.id}/relationships/remote-state-consumers"}
            },
        },
        "links": {"self": f"{API}/organizations/{ws.organization}/workspaces/{ws.name}"},
    }


def _output_resource(out: _Output, kind: str, attributes: dict[str, Any]) -> dict[str, Any]:
    """An output as a JSON:API resource of type `kind`; both kinds link to the state-version-output."""
    return {
        "id": out.id,
        "type": kind,
        "attributes": {"name": out.name, "sensitive": out.sensitive, **attributes},
        "links": {"self": f"{API}/state-version-outputs/{out.id}"},
    }


def _workspace_output_doc(out: _Output) -> dict[str, Any]:
    # Sensitive values are null here; tfe_outputs reads them one by one by id.
    return _output_resource(out, "workspace-outputs", {
        "output-type": _json_type(out.value),
        "value": None if out.sensitive else out.value,
    })


def _output_doc(out: _Output, reveal: bool = False) -> dict[str, Any]:
    return _output_resource(out, "state-version-outputs", {
        "type": _json_type(out.value),
        "value": out.value if (reveal or not out.sensitive) else None,
        "detailed-type": out.detailed_type if out.detailed_type is not None else _terraform_type(out.value),
    })


def _state_version_doc(ws: _Workspace) -> dict[str, Any]:
    return {
        "id": ws.state_version,
        "type": "state-versions",
        "attributes": {
            "created-at": ws.attributes["updated-at"],
            "serial": ws.serial,
            "status": "finalized",
            "resources-processed": True,
            "state-version": 4,
        },
        "relationships": {
            "outputs": {"data": [{"id": o.id, "type": "state-version-outputs"} for o in ws.outputs]},
            "workspace": {"data": {"id": ws.id, "type": "workspaces"}},
        },
        "links": {"self": f"{API}/state-versions/{ws.state_version}"},
    }


def _pending_version_doc(store: _Store, pending: _PendingVersion) -> dict[str, Any]:
    """A created state version still waiting for its state: where to PUT it (no token: the URL's
    random id plays the signature of Terraform Cloud's signed upload URLs)."""
    return {
        "id": pending.id,
        "type": "state-versions",
        "attributes": {
            "created-at": _now(),
            "serial": pending.serial,
            "status": "pending",
            "resources-processed": False,
            "state-version": 4,
            "hosted-state-upload-url": f"{store.base_url}/_archivist/upload/{pending.id}",
            "hosted-json-state-upload-url": f"{store.base_url}/_archivist/upload-json/{pending.id}",
        },
        "relationships": {"outputs": {"data": []},
                          "workspace": {"data": {"id": pending.workspace_id, "type": "workspaces"}}},
        "links": {"self": f"{API}/state-versions/{pending.id}"},
    }


def _page(items: list[dict[str, Any]], query: dict[str, list[str]]) -> dict[str, Any]:
    try:
        number = max(1, int(query.get("page[number]", ["1"])[0]))
        size = min(100, max(1, int(query.get("page[size]", ["20"])[0])))
    except ValueError as exc:
        raise _ApiError(HTTPStatus.BAD_REQUEST, "invalid page parameter", str(exc)) from exc
    total_pages = max(1, -(-len(items) // size))
    return {
        "data": items[(number - 1) * size : number * size],
        "meta": {
            "pagination": {
                "current-page": number,
                "prev-page": number - 1 if number > 1 else None,
                "next-page": number + 1 if number < total_pages else None,
                "total-pages": total_pages,
                "total-count": len(items),
            }
        },
    }


def _malformed(detail: str) -> _ApiError:
    return _ApiError(HTTPStatus.BAD_REQUEST, "malformed JSON:API document", detail)


# ---- handlers by resource (called with the store's lock held) -------------------------------
# Each takes the store and the request and answers, or raises _ApiError for an error document.

# ping and organizations

def _ping(store: _Store, req: _Request) -> _Response:
    return _Response(HTTPStatus.NO_CONTENT)


def _get_org(store: _Store, req: _Request) -> _Response:
    name = store.org(req.params["org"])
    return _Response(HTTPStatus.OK, {"data": {
        "id": name,
        "type": "organizations",
        "attributes": {"name": name, "external-id": f"org-{name}", "default-execution-mode": "remote"},
        "links": {"self": f"{API}/organizations/{name}"},
    }})


def _get_entitlements(store: _Store, req: _Request) -> _Response:
    # Terraform's cloud block reads this at init to check the organization exists; `operations`
    # false would force every run local (it is true on every current plan, the free one included).
    name = store.org(req.params["org"])
    return _Response(HTTPStatus.OK, {"data": {
        "id": f"org-{name}",
        "type": "entitlement-sets",
        "attributes": {"operations": True, "state-storage": True, "private-module-registry": True,
                       "sentinel": False, "teams": False, "vcs-integrations": True},
        "links": {"self": f"{API}/entitlement-sets/org-{name}"},
    }})


# workspaces (by organization and name, or by id)

def _validated_attributes(store: _Store, doc: dict[str, Any] | None, org: str,
                          current: _Workspace | None) -> dict[str, Any]:
    data = (doc or {}).get("data")
    if not isinstance(data, dict):
        raise _malformed("'data' must be a resource object")
    if data.get("type") != "workspaces":
        # JSON:API: a resource type that does not match the endpoint is a conflict.
        raise _ApiError(HTTPStatus.CONFLICT, "type mismatch", f"expected type 'workspaces', got {data.get('type')!r}",
                        "/data/type")
    attrs = data.get("attributes") or {}
    if not isinstance(attrs, dict):
        raise _malformed("'attributes' must be an object")
    if "name" in attrs or current is None:
        name = attrs.get("name")
        if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
            raise _invalid("Name is invalid: use letters, digits, '-' and '_'", "name")
        other = store.by_name(org, name)
        if other is not None and other is not current:
            raise _invalid("Name has already been taken", "name")
    mode = attrs.get("execution-mode")
    if mode is not None and mode not in _EXECUTION_MODES:
        raise _invalid(f"Execution mode must be one of {', '.join(_EXECUTION_MODES)}", "execution-mode")
    return dict(attrs)


def _create_workspace(store: _Store, req: _Request) -> _Response:
    org = store.org(req.params["org"])
    ws = store.create_workspace(org, _validated_attributes(store, req.doc, org, None))
    return _Response(HTTPStatus.CREATED, {"data": _workspace_doc(ws, req.caller)})


def _get_workspace(store: _Store, req: _Request) -> _Response:
    ws = store.workspace(req.params)
    doc: dict[str, Any] = {"data": _workspace_doc(ws, req.caller)}
    includes = req.includes()
    included: list[dict[str, Any]] = []
    if "outputs" in includes and req.caller.can_read_state(ws):
        included += [_workspace_output_doc(o) for o in ws.outputs]
    if "current-state-version" in includes and ws.state_version and req.caller.can_read_state(ws):
        included.append(_state_version_doc(ws))
    if unsupported := includes - {"outputs", "current-state-version"}:
        log.warning("TFC fake: ignoring unsupported include %s", sorted(unsupported))
    if included:
        doc["included"] = included
    return _Response(HTTPStatus.OK, doc)


def _patch_workspace(store: _Store, req: _Request) -> _Response:
    ws = store.workspace(req.params)
    attrs = _validated_attributes(store, req.doc, ws.organization, ws)
    ws.update(attrs)
    log.info("TFC fake: updated workspace %s: %s", ws.name, sorted(attrs))
    return _Response(HTTPStatus.OK, {"data": _workspace_doc(ws, req.caller)})


# locks

def _lock(store: _Store, req: _Request) -> _Response:
    # As the API documents: 409 when the workspace is already locked (go-tfe: "workspace already
    # locked"; Terraform retries that until its -lock-timeout), else the locked workspace.
    ws = store.workspace(req.params)
    if ws.attributes.get("locked"):
        raise _ApiError(HTTPStatus.CONFLICT, "conflict", "Unable to lock workspace. The workspace is already locked.")
    data = (req.doc or {}).get("data")
    reason = (data.get("attributes") or {}).get("reason") if isinstance(data, dict) else None
    ws.attributes["locked"] = True
    ws.lock_reason = str(reason) if reason else None
    log.info("TFC fake: %s locked (%s)", ws.name, ws.lock_reason or "no reason given")
    return _Response(HTTPStatus.OK, {"data": _workspace_doc(ws, req.caller)})


def _release(ws: _Workspace) -> None:
    ws.attributes["locked"] = False
    ws.lock_reason = None


def _unlock(store: _Store, req: _Request) -> _Response:
    # The holder's unlock: 409 when the workspace is not locked (go-tfe: "workspace already unlocked").
    ws = store.workspace(req.params)
    if not ws.attributes.get("locked"):
        raise _ApiError(HTTPStatus.CONFLICT, "conflict", "Unable to unlock workspace. The workspace is not locked.")
    _release(ws)
    log.info("TFC fake: %s unlocked", ws.name)
    return _Response(HTTPStatus.OK, {"data": _workspace_doc(ws, req.caller)})


def _force_unlock(store: _Store, req: _Request) -> _Response:
    # As the API documents: 409 when the workspace is not locked, else the unlocked workspace.
    ws = store.workspace(req.params)
    if ws.unlock_refused is not None:
        raise _ApiError(HTTPStatus(ws.unlock_refused), "refused", "force-unlock refused (the fake was told to)")
    if not ws.attributes.get("locked"):
        raise _ApiError(HTTPStatus.CONFLICT, "conflict", "Unable to unlock workspace. The workspace is not locked.")
    _release(ws)
    log.warning("TFC fake: %s force-unlocked", ws.name)
    return _Response(HTTPStatus.OK, {"data": _workspace_doc(ws, req.caller)})


# remote-state consumers

def _consumer_ids(store: _Store, ws: _Workspace, doc: dict[str, Any] | None) -> list[str]:
    data = (doc or {}).get("data")
    if not isinstance(data, list):
        raise _malformed("'data' must be a list of workspaces")
    ids: list[str] = []
    for item in data:
        if not isinstance(item, dict) or item.get("type") != "workspaces":
            raise _ApiError(HTTPStatus.CONFLICT, "type mismatch", "expected resource identifiers of type 'workspaces'")
        other = store.workspaces.get(str(item.get("id")))
        if other is None or other.organization != ws.organization:
            raise _ApiError(HTTPStatus.NOT_FOUND, "not found", f"workspace {item.get('id')} not found")
        ids.append(other.id)
    return ids


def _list_consumers(store: _Store, req: _Request) -> _Response:
    ws = store.workspace(req.params)
    docs = [_workspace_doc(store.workspaces[c], req.caller) for c in ws.consumers]
    return _Response(HTTPStatus.OK, _page(docs, req.query))


def _add_consumers(store: _Store, req: _Request) -> _Response:
    ws = store.workspace(req.params)
    for consumer in _consumer_ids(store, ws, req.doc):
        if consumer not in ws.consumers:
            ws.consumers.append(consumer)
    return _Response(HTTPStatus.NO_CONTENT)


def _remove_consumers(store: _Store, req: _Request) -> _Response:
    ws = store.workspace(req.params)
    gone = set(_consumer_ids(store, ws, req.doc))
    ws.consumers = [c for c in ws.consumers if c not in gone]
    return _Response(HTTPStatus.NO_CONTENT)


# state versions

def _readable_version(store: _Store, req: _Request) -> _Workspace:
    """The workspace whose current state version the path's `sv_id` names, if the caller may read it."""
    ws = store.by_state_version(req.params["sv_id"])
    if ws is None:
        raise _not_found()
    req.caller.readable_state(ws)
    return ws


def _current_state_version(store: _Store, req: _Request) -> _Response:
    ws = store.workspace(req.params)
    req.caller.readable_state(ws)
    doc: dict[str, Any] = {"data": _state_version_doc(ws)}
    if ws.raw_state is not None:
        doc["data"]["attributes"]["hosted-state-download-url"] = f"{store.base_url}/_archivist/{ws.state_version}"
    if "outputs" in ",".join(req.query.get("include", [])).split(","):
        doc["included"] = [_output_doc(o) for o in ws.outputs]
    return _Response(HTTPStatus.OK, doc)


def _get_state_version(store: _Store, req: _Request) -> _Response:
    pending = store.pending.get(req.params["sv_id"])
    if pending is not None and req.caller.can_read_state(store.workspaces[pending.workspace_id]):
        return _Response(HTTPStatus.OK, {"data": _pending_version_doc(store, pending)})
    return _Response(HTTPStatus.OK, {"data": _state_version_doc(_readable_version(store, req))})


def _create_state_version(store: _Store, req: _Request) -> _Response:
    """What Terraform's cloud backend does on every state write: the new version's serial and MD5
    (and lineage), then the state itself, uploaded to the answered URL (or, go-tfe's fallback,
    inline and base64-encoded as `state`). Terraform Cloud requires the writer to hold the
    workspace's lock: 409 otherwise."""
    ws = store.workspace(req.params)
    data = (req.doc or {}).get("data")
    if not isinstance(data, dict) or data.get("type") != "state-versions":
        raise _ApiError(HTTPStatus.CONFLICT, "type mismatch", "expected type 'state-versions'", "/data/type")
    attrs = data.get("attributes") or {}
    serial, md5 = attrs.get("serial"), attrs.get("md5")
    if not isinstance(serial, int) or isinstance(serial, bool):
        raise _invalid("Serial is required", "serial")
    if not isinstance(md5, str) or not re.fullmatch(r"[0-9a-f]{32}", md5):
        raise _invalid("MD5 is required", "md5")
    if not ws.attributes.get("locked"):
        raise _ApiError(HTTPStatus.CONFLICT, "conflict",
                        "The workspace must be locked by the user creating a state version")
    pending = _PendingVersion(_new_id("sv"), ws.id, serial, md5, attrs.get("lineage"))
    inline = attrs.get("state")
    if inline is None:
        store.pending[pending.id] = pending
        return _Response(HTTPStatus.CREATED, {"data": _pending_version_doc(store, pending)})
    try:
        raw = base64.b64decode(str(inline), validate=True)
        state = json.loads(raw)
    except (ValueError, json.JSONDecodeError) as exc:
        raise _invalid(f"State is not a base64-encoded state document: {exc}", "state") from exc
    if hashlib.md5(raw, usedforsecurity=False).hexdigest() != md5:
        raise _invalid("MD5 does not match the state", "md5")
    store.install_state(ws, state, pending.id)
    return _Response(HTTPStatus.CREATED, {"data": _state_version_doc(ws)})


# outputs

def _current_outputs(store: _Store, req: _Request) -> _Response:
    ws = store.workspace(req.params)
    req.caller.readable_state(ws)
    if ws.outputs_processing > 0:
        # The API answers 503 while a new state version's outputs are processed asynchronously.
        ws.outputs_processing -= 1
        raise _ApiError(HTTPStatus.SERVICE_UNAVAILABLE, "Service Unavailable",
                        "state version outputs are still being processed; retry the request")
    return _Response(HTTPStatus.OK, _page([_output_doc(o) for o in ws.outputs], req.query))


def _state_version_outputs(store: _Store, req: _Request) -> _Response:
    ws = _readable_version(store, req)
    return _Response(HTTPStatus.OK, _page([_output_doc(o) for o in ws.outputs], req.query))


def _get_output(store: _Store, req: _Request) -> _Response:
    ws, out = store.output(req.params["out_id"])
    req.caller.readable_state(ws)
    # Read one by one, a sensitive value is revealed: this is how tfe_outputs gets it.
    return _Response(HTTPStatus.OK, {"data": _output_doc(out, reveal=True)})


# ---- the route table ------------------------------------------------------------------------

_Endpoint = Callable[[_Store, _Request], _Response]


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]  # the whole path, /api/v2/... with named groups for the handler's params
    handler: _Endpoint


def _routes(*table: tuple[str, str, _Endpoint]) -> tuple[_Route, ...]:
    return tuple(_Route(method, re.compile(f"{API}/{path}"), handler) for method, path, handler in table)


# variables (02-deps publishes its non-secret contract as one; go-tfe's Variables client)

_VAR_CATEGORIES = ("terraform", "env")


def _var_doc(ws: _Workspace, var: dict[str, Any]) -> dict[str, Any]:
    # As the API: a sensitive variable's value is never returned.
    attributes = {k: v for k, v in var.items() if k != "id"}
    if attributes.get("sensitive"):
        attributes["value"] = None
    return {"id": var["id"], "type": "vars", "attributes": attributes,
            "relationships": {"configurable": {"data": {"id": ws.id, "type": "workspaces"}}},
            "links": {"self": f"{API}/workspaces/{ws.id}/vars/{var['id']}"}}


def _var_attributes(doc: dict[str, Any] | None, current: dict[str, Any] | None) -> dict[str, Any]:
    data = (doc or {}).get("data")
    if not isinstance(data, dict) or data.get("type") != "vars":
        raise _malformed("data.type must be 'vars'")
    given = data.get("attributes") or {}
    merged = {"key": None, "value": "", "description": "", "category": None, "hcl": False, "sensitive": False,
              **(current or {}), **{k: v for k, v in given.items() if k in
                                    ("key", "value", "description", "category", "hcl", "sensitive")}}
    if not merged["key"]:
        raise _invalid("Key can't be blank", "key")
    if merged["category"] not in _VAR_CATEGORIES:
        raise _invalid(f"Category must be one of {', '.join(_VAR_CATEGORIES)}", "category")
    return merged


def _variable(ws: _Workspace, var_id: str) -> dict[str, Any]:
    found = next((v for v in ws.variables if v["id"] == var_id), None)
    if found is None:
        raise _not_found()
    return found


def _list_vars(store: _Store, req: _Request) -> _Response:
    ws = store.workspace(req.params)
    return _Response(HTTPStatus.OK, _page([_var_doc(ws, v) for v in ws.variables], req.query))


def _create_var(store: _Store, req: _Request) -> _Response:
    ws = store.workspace(req.params)
    attrs = _var_attributes(req.doc, None)
    if not ws.one_variable_per_apply and any(v["key"] == attrs["key"] and v["category"] == attrs["category"]
                                             for v in ws.variables):
        raise _invalid("Key has already been taken", "key")
    var = {"id": _new_id("var"), **attrs, "version-id": _new_id("v")}
    ws.variables.append(var)
    return _Response(HTTPStatus.CREATED, {"data": _var_doc(ws, var)})


def _get_var(store: _Store, req: _Request) -> _Response:
    ws = store.workspace(req.params)
    return _Response(HTTPStatus.OK, {"data": _var_doc(ws, _variable(ws, req.params["var_id"]))})


def _patch_var(store: _Store, req: _Request) -> _Response:
    ws = store.workspace(req.params)
    var = _variable(ws, req.params["var_id"])
    var.update(_var_attributes(req.doc, {k: v for k, v in var.items() if k not in ("id", "version-id")}))
    var["version-id"] = _new_id("v")
    return _Response(HTTPStatus.OK, {"data": _var_doc(ws, var)})


def _delete_var(store: _Store, req: _Request) -> _Response:
    ws = store.workspace(req.params)
    ws.variables.remove(_variable(ws, req.params["var_id"]))
    return _Response(HTTPStatus.NO_CONTENT)


_ORG = "organizations/(?P<org>[^/]+)"
_BY_NAME = f"{_ORG}/workspaces/(?P<name>[^/]+)"
_BY_ID = "workspaces/(?P<ws_id>[^/]+)"
_CONSUMERS = f"{_BY_ID}/relationships/remote-state-consumers"
_STATE_VERSION = "state-versions/(?P<sv_id>[^/]+)"

ROUTES: tuple[_Route, ...] = _routes(
    ("GET", "ping", _ping),
    ("GET", _ORG, _get_org),
    ("GET", f"{_ORG}/entitlement-set", _get_entitlements),
    ("POST", f"{_ORG}/workspaces", _create_workspace),
    ("GET", _BY_NAME, _get_workspace),
    ("PATCH", _BY_NAME, _patch_workspace),
    ("GET", _BY_ID, _get_workspace),
    ("PATCH", _BY_ID, _patch_workspace),
    ("POST", f"{_BY_ID}/actions/lock", _lock),
    ("POST", f"{_BY_ID}/actions/unlock", _unlock),
    ("POST", f"{_BY_ID}/actions/force-unlock", _force_unlock),
    ("GET", _CONSUMERS, _list_consumers),
    ("POST", _CONSUMERS, _add_consumers),
    ("DELETE", _CONSUMERS, _remove_consumers),
    ("GET", f"{_BY_ID}/current-state-version", _current_state_version),
    ("POST", f"{_BY_ID}/state-versions", _create_state_version),
    ("GET", _STATE_VERSION, _get_state_version),
    ("GET", f"{_BY_ID}/current-state-version-outputs", _current_outputs),
    ("GET", f"{_STATE_VERSION}/outputs", _state_version_outputs),
    ("GET", "state-version-outputs/(?P<out_id>[^/]+)", _get_output),
    ("GET", f"{_BY_ID}/vars", _list_vars),
    ("POST", f"{_BY_ID}/vars", _create_var),
    ("GET", f"{_BY_ID}/vars/(?P<var_id>[^/]+)", _get_var),
    ("PATCH", f"{_BY_ID}/vars/(?P<var_id>[^/]+)", _patch_var),
    ("DELETE", f"{_BY_ID}/vars/(?P<var_id>[^/]+)", _delete_var),
)


def _parse_body(method: str, content_type: str | None, body: bytes) -> dict[str, Any] | None:
    if method == "GET" or not body:
        return None
    media_type = (content_type or "").split(";")[0].strip()
    if media_type != JSONAPI:
        raise _ApiError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "unsupported media type",
                        f"expected Content-Type {JSONAPI}, got {media_type or 'none'}")
    try:
        doc = json.loads(body)
    except json.JSONDecodeError as exc:
        raise _ApiError(HTTPStatus.BAD_REQUEST, "malformed JSON", str(exc)) from exc
    if not isinstance(doc, dict) or "data" not in doc:
        raise _malformed("a top-level 'data' member is required")
    return doc


def _dispatch(store: _Store, method: str, path: str, query: dict[str, list[str]], authorization: str | None,
              content_type: str | None, body: bytes) -> _Response:
    """One /api call: recorded, authenticated, routed (404 no route, 405 no route for the method), answered."""
    with store.lock:
        store.calls.append((method, path))
    caller = store.authenticate(authorization)
    matches = [(route, match) for route in ROUTES if (match := route.pattern.fullmatch(path))]
    if not matches:
        raise _not_found()
    route, match = next(((r, m) for r, m in matches if r.method == method), (None, None))
    if route is None or match is None:
        raise _ApiError(HTTPStatus.METHOD_NOT_ALLOWED, "method not allowed")
    doc = _parse_body(method, content_type, body)
    if caller.workspace_id is not None and method != "GET":
        raise _not_found()  # run tokens here are read-only
    request = _Request(caller, {k: unquote(v) for k, v in match.groupdict().items()}, query, doc)
    with store.lock:
        return route.handler(store, request)


# ---- HTTP ------------------------------------------------------------------------------------

class _HttpHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: Go's client reuses connections
    # Headers and body go out as two writes; with Nagle on, each response waits ~40 ms for an ACK.
    disable_nagle_algorithm = True
    server: httpserver.Server  # its state is the fake's _Store

    def do_GET(self) -> None:  # http.server dispatches on do_<METHOD>
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_PUT(self) -> None:  # the state uploads (archivist URLs)
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's signature)
        # The request line holds no secrets (the token travels in a header, never logged).
        log.debug("TFC fake %s: %s", self.address_string(), format % args)

    def _handle(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        store: _Store = self.server.state
        if url.path == "/.well-known/terraform.json" and self.command == "GET":
            return httpserver.send_json(self, HTTPStatus.OK, DISCOVERY)
        if url.path.startswith("/_archivist/") and self.command == "GET":
            # Terraform Cloud's state download URLs are signed and need no token; the random state
            # version id plays the signature here.
            raw = store.raw_state(url.path.rsplit("/", 1)[1])
            if raw is not None:
                return httpserver.send_json(self, HTTPStatus.OK, raw)
            # An unknown version is the plain 404 below (no /api/ prefix).
        if url.path.startswith("/_archivist/upload") and self.command == "PUT":
            # Like the download URLs: no token (go-tfe sends none to a "foreign" URL).
            kind, _, sv_id = url.path.removeprefix("/_archivist/").partition("/")
            if kind == "upload":
                return httpserver.send_bytes(self, store.receive_upload(sv_id, body), b"")
            if kind == "upload-json" and store.expects_json_upload(sv_id):
                return httpserver.send_bytes(self, HTTPStatus.OK, b"")  # the JSON rendering: not served back
        if not url.path.startswith("/api/"):
            return httpserver.send_json(self, HTTPStatus.NOT_FOUND, _not_found().document(), JSONAPI)
        try:
            resp = _dispatch(store, self.command, url.path, parse_qs(url.query), self.headers.get("Authorization"),
                             self.headers.get("Content-Type"), body)
        except _ApiError as err:
            resp = _Response(err.status, err.document())
        except Exception:  # a fake must answer, not leave the client hanging
            log.exception("TFC fake: internal error on %s %s", self.command, url.path)
            resp = _Response(HTTPStatus.INTERNAL_SERVER_ERROR,
                             {"errors": [{"status": "500", "title": "internal error"}]})
        return httpserver.send_json(self, resp.status, resp.body, JSONAPI, API_HEADERS)


class TfcFake:
    """A Terraform Cloud stand-in on a free loopback port, served over HTTPS with `ca`'s cert.

    Use as a context manager; `url` is the base address (e.g. for `TfcClient(base_url=...)`),
    `hostname` is what the `tfe` provider's `hostname` or TFE_HOSTNAME takes.
    """

    def __init__(self, ca: CaFiles, token: str, organization: str = "langfuse-test") -> None:
        self._store = _Store(token, organization)
        self._server = httpserver.LocalServer(_HttpHandler, self._store, name="tfc-fake",
                                              tls=httpserver.tls_context(ca.cert, ca.key))

    @property
    def organization(self) -> str:
        return self._store.organization

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def hostname(self) -> str:
        return f"{httpserver.HOST}:{self.port}"

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> Self:
        self._server.start()
        self._store.base_url = self.url
        log.info("TFC fake serving organization %r at %s", self.organization, self.url)
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ---- test helpers ---------------------------------------------------------------------

    def _seeded(self, name: str) -> _Workspace:
        """A workspace the test created (caller holds the lock)."""
        ws = self._store.by_name(self.organization, name)
        if ws is None:
            raise KeyError(f"no workspace {name!r} in the fake")
        return ws

    def add_workspace(self, name: str, attributes: Mapping[str, Any] | None = None) -> str:
        """Seed a workspace (Terraform Cloud defaults, e.g. execution-mode remote) and return its id."""
        with self._store.lock:
            if self._store.by_name(self.organization, name) is not None:
                raise ValueError(f"workspace {name!r} already exists in the fake")
            return self._store.create_workspace(self.organization, {**(attributes or {}), "name": name}).id

    def set_outputs(self, workspace_name: str, outputs: Mapping[str, tuple[Any, bool]]) -> None:
        """Make `outputs` ({name: (value, sensitive)}) the workspace's current state version outputs.

        Creates the workspace if it does not exist, as a first apply would need it to.
        """
        with self._store.lock:
            ws = self._store.by_name(self.organization, workspace_name)
            if ws is None:
                ws = self._store.create_workspace(self.organization, {"name": workspace_name})
            ws.serial += 1
            ws.state_version = _new_id("sv")
            ws.outputs = [_Output(_new_id("wsout"), n, copy.deepcopy(v), bool(s)) for n, (v, s) in outputs.items()]
            ws.attributes["updated-at"] = _now()
        log.info("TFC fake: %s now has outputs %s", workspace_name, sorted(outputs))

    def set_state(self, workspace_name: str, state: Mapping[str, Any]) -> None:
        """Make a terraform.tfstate document (format 4) the workspace's current state version: its
        outputs become the version's outputs (null ones are absent, as Terraform stores none) and
        the document is served at the version's hosted-state-download-url."""
        with self._store.lock:
            ws = self._store.by_name(self.organization, workspace_name)
            if ws is None:
                ws = self._store.create_workspace(self.organization, {"name": workspace_name})
            self._store.install_state(ws, state)
        log.info("TFC fake: %s now has a state with outputs %s", workspace_name, sorted(state.get("outputs") or {}))

    def clear_state(self, workspace_name: str) -> None:
        """The workspace as before its first apply: no state version, no outputs (kept: the workspace,
        its settings and its lock)."""
        with self._store.lock:
            ws = self._seeded(workspace_name)
            ws.state_version, ws.outputs, ws.raw_state = None, [], None
            ws.attributes["resource-count"] = 0

    def state(self, workspace_name: str) -> dict[str, Any] | None:
        """A copy of the terraform.tfstate document of the workspace's current state version (None
        before its first state)."""
        with self._store.lock:
            return copy.deepcopy(self._seeded(workspace_name).raw_state)

    def outputs_still_processing(self, workspace_name: str, reads: int) -> None:
        """Answer the next `reads` reads of the workspace's current outputs with 503, as Terraform
        Cloud does while it processes a freshly uploaded state version."""
        with self._store.lock:
            self._seeded(workspace_name).outputs_processing = reads

    def lock_workspace(self, name: str) -> None:
        """Leave the workspace locked, as a Terraform run killed mid-apply does."""
        with self._store.lock:
            self._seeded(name).attributes["locked"] = True

    def unlock_workspace(self, name: str) -> None:
        """Release the workspace's lock, whoever holds it (a test resetting the fake between cases)."""
        with self._store.lock:
            _release(self._seeded(name))

    def locked(self, name: str) -> bool:
        with self._store.lock:
            return bool(self._seeded(name).attributes.get("locked"))

    def refuse_force_unlock(self, name: str, status: int = 403) -> None:
        """Answer every force-unlock of the workspace with `status`, as Terraform Cloud does for a
        token without the "lock/unlock" permission (403) or in an outage (5xx)."""
        with self._store.lock:
            self._seeded(name).unlock_refused = status

    def accept_force_unlock(self, name: str) -> None:
        """Undo `refuse_force_unlock`: force-unlock answers as the API does again."""
        with self._store.lock:
            self._seeded(name).unlock_refused = None

    def exists(self, name: str) -> bool:
        with self._store.lock:
            return self._store.by_name(self.organization, name) is not None

    def workspace(self, name: str) -> dict[str, Any]:
        """A copy of a workspace's attributes plus `id` and `remote-state-consumers` (names)."""
        with self._store.lock:
            ws = self._seeded(name)
            consumers = [self._store.workspaces[c].name for c in ws.consumers]
            return {**copy.deepcopy(ws.attributes), "id": ws.id, "remote-state-consumers": consumers}

    def run_token(self, workspace_name: str) -> str:
        """A token that acts as `workspace_name`'s run: it reads other state only where shared."""
        with self._store.lock:
            token = secrets.token_urlsafe(24)
            self._store.run_tokens[token] = self._seeded(workspace_name).id
            return token

    def calls(self) -> list[tuple[str, str]]:
        """Every (method, path) the fake received, in order: shows which endpoints a client used."""
        with self._store.lock:
            return list(self._store.calls)

    def set_variable(self, workspace_name: str, key: str, value: str, category: str = "env") -> None:
        """A workspace variable as a Terraform run with the tfe provider would have created it."""
        with self._store.lock:
            ws = self._seeded(workspace_name)
            ws.variables = [v for v in ws.variables if not (v["key"] == key and v["category"] == category)]
            ws.variables.append({"id": _new_id("var"), "key": key, "value": value, "description": "",
                                 "category": category, "hcl": False, "sensitive": False, "version-id": _new_id("v")})

    def accept_repeated_variable_keys(self, workspace_name: str) -> None:
        """Lets many copies of one configuration each create their own variable of the same key on
        this workspace, each with its own id (Terraform Cloud refuses the second: there each copy
        would be a stack of its own). For the plan tier's sink of 02-deps' contract variable."""
        with self._store.lock:
            self._seeded(workspace_name).one_variable_per_apply = True

    def variable_records(self, workspace_name: str) -> list[dict[str, Any]]:
        """The workspace's variables as stored (ids included): what a snapshot of the fake keeps."""
        with self._store.lock:
            return copy.deepcopy(self._seeded(workspace_name).variables)

    def set_variable_records(self, workspace_name: str, records: list[dict[str, Any]]) -> None:
        """Puts back what variable_records returned, ids included (a restored state refers to them)."""
        with self._store.lock:
            self._seeded(workspace_name).variables = copy.deepcopy(records)

    def clear_variables(self, workspace_name: str) -> None:
        with self._store.lock:
            self._seeded(workspace_name).variables = []

    def variables(self, workspace_name: str) -> dict[str, str]:
        """The workspace's variables as key -> value, the latest of a repeated key (sensitive ones
        included: the fake's view)."""
        with self._store.lock:
            return {v["key"]: v["value"] for v in self._seeded(workspace_name).variables}
