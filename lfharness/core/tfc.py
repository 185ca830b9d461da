"""Terraform Cloud: make sure the three langfuse-* workspaces exist and can read each other.

Decisions this module carries out:
* Workspaces run in local execution mode (decision 3): auth comes only from `.env`, which
  works only if Terraform runs on the operator's machine; TFC keeps the state (NFR12).
* State sharing network -> deps, app and deps -> app (decision 12): without it
  `tfe_outputs` silently returns an empty object instead of failing.

The API token is sent in a header and never appears in messages or logs (NFR1).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from lfharness.core.wait import WaitTimeout, retry

log = logging.getLogger(__name__)

JSONAPI = "application/vnd.api+json"
_PAGE_SIZE = 100  # the API's maximum: fewer round trips


class _StillProcessing(Exception):
    """HTTP 503 on a read the API documents as "being processed, retry the request"."""


class TfcError(RuntimeError):
    """A Terraform Cloud call did not give what the harness needs.

    The message says what was expected, what was found, and what to do next.
    """

    def __init__(self, expected: str, found: str, next_step: str) -> None:
        super().__init__(f"Expected {expected}, but found {found}. Next: {next_step}")
        self.expected = expected
        self.found = found
        self.next_step = next_step


@dataclass(frozen=True)
class TfcOutput:
    """One output of a workspace's current state version."""

    name: str
    value: Any  # None for a sensitive output unless read with reveal_sensitive=True
    sensitive: bool
    type: str
    id: str


class TfcClient:
    """A small Terraform Cloud API client over `requests`."""

    def __init__(
        self,
        token: str,
        organization: str,
        base_url: str = "https://app.terraform.io",
        verify: bool | str | Path = True,
        timeout: float = 30,
        processing_timeout: float = 120,
        processing_interval: float = 5,
    ) -> None:
        if not token:
            raise TfcError(
                "a Terraform Cloud API token",
                "an empty token",
                "set TFE_TOKEN (or TFC_TOKEN) in .env to a user or team API token",
            )
        self._token = token
        self.organization = organization
        self._api = base_url.rstrip("/") + "/api/v2"
        self._timeout = timeout
        # Bounded wait for outputs the API is still processing (503 "retry the request").
        self._processing_timeout = processing_timeout
        self._processing_interval = processing_interval
        # Passed on each request: a Session's own `verify` loses to REQUESTS_CA_BUNDLE.
        self._verify: bool | str = str(verify) if isinstance(verify, Path) else verify
        self._session = requests.Session()
        self._session.headers.update({"Authorization": f"Bearer {token}", "Accept": JSONAPI})

    def __repr__(self) -> str:
        # Never the token: reprs end up in tracebacks and logs.
        return f"TfcClient(organization={self.organization!r}, api={self._api!r})"

    # ---- HTTP ----------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    def _request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        json_body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> requests.Response:
        url = self._api + path
        headers = {"Content-Type": JSONAPI} if json_body is not None else None
        try:
            resp = self._session.request(
                method, url, json=json_body, params=params, headers=headers, verify=self._verify, timeout=self._timeout
            )
        except requests.RequestException as exc:
            raise TfcError(
                f"an answer from Terraform Cloud at {self._api} to {what}",
                f"a connection error ({self._scrub(type(exc).__name__ + ': ' + str(exc))})",
                "check the network, the base URL, and that the CA bundle trusts the server",
            ) from None  # `from None`: the chained exception could carry request details
        log.debug("TFC %s %s -> %s", method, path, resp.status_code)
        if resp.status_code == 401:
            raise TfcError(
                f"Terraform Cloud to accept the API token to {what}",
                "HTTP 401 unauthorized (the token is invalid, expired or revoked)",
                "create a user or team API token in Terraform Cloud and put it in .env as TFE_TOKEN",
            )
        return resp

    def _fail(self, resp: requests.Response, *, expected: str, next_step: str) -> TfcError:
        return TfcError(expected, f"HTTP {resp.status_code}{self._error_detail(resp)}", next_step)

    def _error_detail(self, resp: requests.Response) -> str:
        try:
            errors = resp.json().get("errors", [])
        except ValueError:
            return ""
        parts = [
            " ".join(str(e.get(k)) for k in ("title", "detail") if e.get(k)) if isinstance(e, dict) else str(e)
            for e in errors
        ]
        return f" ({self._scrub('; '.join(p for p in parts if p))})" if parts else ""

    def _get_when_processed(self, path: str, *, what: str, params: dict[str, str]) -> requests.Response:
        """GET that waits out 503: Terraform Cloud answers it while it still processes a new state
        version's outputs and documents it as "retry the request". Bounded by processing_timeout."""

        def attempt() -> requests.Response:
            resp = self._request("GET", path, what=what, params=params)
            if resp.status_code == 503:
                raise _StillProcessing(f"HTTP 503{self._error_detail(resp)}")
            return resp

        try:
            return retry(attempt, timeout=self._processing_timeout, interval=self._processing_interval,
                         what=f"Terraform Cloud to {what}", retry_on=(_StillProcessing,))
        except WaitTimeout as exc:
            raise TfcError(
                f"Terraform Cloud to {what} within {self._processing_timeout:g}s",
                f"it still answered 503 (outputs being processed): {self._scrub(str(exc))}",
                "retry in a few minutes; if it persists, check Terraform Cloud's status page",
            ) from None

    def _list(self, path: str, *, what: str, expected: str, next_step: str,
              wait_for_processing: bool = False) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        page: int | None = 1
        while page is not None:
            params = {"page[number]": str(page), "page[size]": str(_PAGE_SIZE)}
            resp = (self._get_when_processed(path, what=what, params=params) if wait_for_processing
                    else self._request("GET", path, what=what, params=params))
            if resp.status_code != 200:
                raise self._fail(resp, expected=expected, next_step=next_step)
            doc = resp.json()
            items += doc.get("data", [])
            page = (doc.get("meta") or {}).get("pagination", {}).get("next-page")
        return items

    # ---- workspaces ------------------------------------------------------------------------

    def get_workspace(self, name: str) -> dict[str, Any] | None:
        """The workspace's JSON:API resource object, or None if it does not exist."""
        resp = self._request(
            "GET", f"/organizations/{self.organization}/workspaces/{name}", what=f"read workspace {name!r}"
        )
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise self._fail(
                resp,
                expected=f"workspace {name!r} in organization {self.organization!r}",
                next_step="retry; if it persists, check Terraform Cloud's status page",
            )
        return dict(resp.json()["data"])

    def _require(self, name: str) -> dict[str, Any]:
        ws = self.get_workspace(name)
        if ws is None:
            raise TfcError(
                f"workspace {name!r} in organization {self.organization!r}",
                "no such workspace (or the token cannot see it)",
                "run the harness set-up (TfcClient.ensure_all) first, and check TFC_ORGANIZATION in .env",
            )
        return ws

    def force_unlock_if_locked(self, name: str) -> bool:
        """Releases a lock left on `name` (a run killed mid-apply keeps it); True when there was one.

        Only for when no run of these workspaces can still be active: the teardown command after
        the suite has ended."""
        ws = self._require(name)
        if not ws["attributes"].get("locked"):
            return False
        resp = self._request("POST", f"/workspaces/{ws['id']}/actions/force-unlock", what=f"force-unlock {name!r}")
        if resp.status_code not in (200, 409):  # 409: unlocked meanwhile
            raise self._fail(resp, expected=f"the lock on {name!r} released",
                             next_step="unlock it in Terraform Cloud (Settings -> Locking), then re-run the teardown")
        return True

    def ensure_workspace(self, name: str) -> dict[str, Any]:
        """Create `name` if missing and make sure it runs in local execution mode."""
        ws = self.get_workspace(name)
        if ws is None:
            body = {"data": {"type": "workspaces", "attributes": {"name": name, "execution-mode": "local"}}}
            resp = self._request(
                "POST",
                f"/organizations/{self.organization}/workspaces",
                json_body=body,
                what=f"create workspace {name!r}",
            )
            if resp.status_code != 201:
                raise self._fail(
                    resp,
                    expected=f"workspace {name!r} to be created in organization {self.organization!r}",
                    next_step="check TFC_ORGANIZATION in .env and that the token may create workspaces there",
                )
            log.info("Created Terraform Cloud workspace %s/%s in local execution mode", self.organization, name)
            return dict(resp.json()["data"])
        if ws["attributes"].get("execution-mode") == "local":
            log.info("Terraform Cloud workspace %s/%s exists in local execution mode", self.organization, name)
            return ws
        found_mode = ws["attributes"].get("execution-mode")
        body = {"data": {"type": "workspaces", "attributes": {"execution-mode": "local"}}}
        resp = self._request(
            "PATCH",
            f"/workspaces/{ws['id']}",
            json_body=body,
            what=f"switch workspace {name!r} to local execution mode",
        )
        if resp.status_code != 200:
            raise self._fail(
                resp,
                expected=f"workspace {name!r} to switch from {found_mode!r} to local execution mode",
                next_step="set Execution Mode to Local in the workspace's General settings, or use a token with admin rights on it",
            )
        log.info(
            "Switched Terraform Cloud workspace %s/%s from %s to local execution mode",
            self.organization,
            name,
            found_mode,
        )
        return dict(resp.json()["data"])

    # ---- state sharing ---------------------------------------------------------------------

    def remote_state_consumers(self, name: str) -> list[str]:
        """Names of the workspaces allowed to read `name`'s state."""
        ws = self._require(name)
        items = self._list(
            f"/workspaces/{ws['id']}/relationships/remote-state-consumers",
            what=f"list who may read {name!r}'s state",
            expected=f"the remote state consumers of {name!r}",
            next_step="check that the token has admin rights on the workspace",
        )
        return [str(item["attributes"]["name"]) for item in items]

    def share_state(self, source: str, consumers: Sequence[str]) -> None:
        """Let `consumers` read `source`'s state, so their `tfe_outputs` sees its outputs."""
        src = self._require(source)
        present = set(self.remote_state_consumers(source))
        missing = [c for c in consumers if c not in present]
        if not missing:
            log.info("State of %s is already shared with %s", source, ", ".join(consumers))
            return
        data = [{"type": "workspaces", "id": self._require(c)["id"]} for c in missing]
        resp = self._request(
            "POST",
            f"/workspaces/{src['id']}/relationships/remote-state-consumers",
            json_body={"data": data},
            what=f"share {source!r}'s state",
        )
        if resp.status_code != 204:
            raise self._fail(
                resp,
                expected=f"{source!r} to share its state with {', '.join(missing)}",
                next_step=f"in {source!r}'s settings, under Remote state sharing, add {', '.join(missing)}",
            )
        log.info("Shared state of %s with %s", source, ", ".join(missing))

    # ---- outputs -----------------------------------------------------------------------------

    def outputs(self, name: str, *, reveal_sensitive: bool = False) -> dict[str, TfcOutput]:
        """The outputs of `name`'s current state version, by output name.

        Sensitive values come back as None unless `reveal_sensitive`, which reads each one
        by id, as the `tfe_outputs` data source does.
        """
        ws = self._require(name)
        expected = f"outputs of workspace {name!r}"
        items = self._list(
            f"/workspaces/{ws['id']}/current-state-version-outputs",
            what=f"read {name!r}'s outputs",
            expected=expected,
            next_step=f"apply {name!r} first; if another workspace's token reads it, share {name!r}'s state with that workspace",
            wait_for_processing=True,
        )
        result: dict[str, TfcOutput] = {}
        for item in items:
            attrs = item["attributes"]
            value = attrs.get("value")
            if attrs.get("sensitive") and reveal_sensitive:
                value = self._reveal(item["id"], name, attrs["name"])
            result[attrs["name"]] = TfcOutput(
                name=attrs["name"],
                value=value,
                sensitive=bool(attrs.get("sensitive")),
                type=str(attrs.get("type")),
                id=item["id"],
            )
        return result

    def _reveal(self, output_id: str, workspace: str, output: str) -> Any:
        resp = self._request("GET", f"/state-version-outputs/{output_id}", what=f"read {workspace}.{output}")
        if resp.status_code != 200:
            raise self._fail(
                resp,
                expected=f"the value of sensitive output {workspace}.{output}",
                next_step="check that the token may read state versions of the workspace",
            )
        return resp.json()["data"]["attributes"].get("value")

    # ---- state -------------------------------------------------------------------------------

    def current_state(self, name: str) -> dict[str, Any] | None:
        """The raw state (the terraform.tfstate document) of `name`'s current state version, None
        before its first apply. It holds secrets in clear: keep it in memory, never log it.

        The version's hosted-state-download-url is a signed URL on another host: the API token is
        sent only to the API's own host, never there.
        """
        ws = self._require(name)
        resp = self._request("GET", f"/workspaces/{ws['id']}/current-state-version", what=f"read {name!r}'s state version")
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise self._fail(resp, expected=f"the current state version of {name!r}",
                             next_step="check that the token may read the workspace's state versions")
        url = resp.json()["data"]["attributes"].get("hosted-state-download-url")
        if not url:
            raise TfcError(f"a download URL for {name!r}'s current state", "none in the state version",
                           "retry in a minute (the upload may still be processed); check the token's state access")
        same_host = urlsplit(url).netloc == urlsplit(self._api).netloc
        try:
            download = (self._session.get(url, verify=self._verify, timeout=self._timeout) if same_host else
                        requests.get(url, verify=self._verify, timeout=self._timeout))
        except requests.RequestException as exc:
            raise TfcError(f"{name!r}'s state from its download URL", f"a connection error ({type(exc).__name__})",
                           "check the network and retry") from None  # the URL is signed: keep it out of messages
        if download.status_code != 200:
            raise TfcError(f"{name!r}'s state from its download URL", f"HTTP {download.status_code}",
                           "retry; the signed URL may have expired")
        return dict(download.json())

    # ---- all three ---------------------------------------------------------------------------

    def ensure_all(self, readers: Mapping[str, Sequence[str]]) -> dict[str, dict[str, Any]]:
        """Makes every workspace of `readers` (name -> the workspaces that read its state, from the
        stack's workspace registry) exist in local mode and shares each state with exactly its
        readers (FR16, FR17)."""
        unknown = sorted({r for names in readers.values() for r in names} - set(readers))
        if unknown:
            raise TfcError("the workspaces that read a state", f"{unknown}, which are not workspaces here",
                           "name every reader as a workspace too")
        result = {name: self.ensure_workspace(name) for name in readers}
        for name, readers_of in readers.items():
            if readers_of:
                self.share_state(name, list(readers_of))
        return result
