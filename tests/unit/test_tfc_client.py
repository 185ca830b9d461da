"""What the Terraform Cloud client tells and does for the operator (issue 28): the errors it raises
(what, where, the fix, never the token), the workspaces and state sharing it leaves behind, the
outputs and state it reads, and the locks it releases.

Stand-ins: the local Terraform Cloud fake (lfharness.testing.tfc_fake) over HTTPS with a throwaway
CA; a workspace's run token plays a token that may read but not write (the fake answers 404 to
its writes, as Terraform Cloud does to a token without the permission). For the answers the fake
never gives (a proxy's HTML page, a refused download, a state download URL on another host), a
canned Terraform Cloud: a handler answering fixed documents on a loopback HTTPS port.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler

import pytest

from lfharness.core.tfc import TfcClient, TfcError
from lfharness.testing import httpserver
from lfharness.testing.localca import CaFiles
from lfharness.testing.tfc_fake import TfcFake

pytestmark = pytest.mark.static

TOKEN = "client-token-7Hq2.atlasv1.NOT-A-REAL-SECRET"
NETWORK, DEPS, APP = "langfuse-network", "langfuse-deps", "langfuse-app"
READERS = {NETWORK: [DEPS, APP], DEPS: [APP], APP: []}
JSON_API = "application/vnd.api+json"  # the media type of Terraform Cloud's API documents


@pytest.fixture
def fake(ca: CaFiles) -> Iterator[TfcFake]:
    with TfcFake(ca, TOKEN) as running:
        yield running


def _client(fake: TfcFake, ca: CaFiles, token: str = TOKEN, base_url: str | None = None) -> TfcClient:
    return TfcClient(token, fake.organization, base_url=base_url or fake.url, verify=ca.ca, timeout=5)


@pytest.fixture
def client(fake: TfcFake, ca: CaFiles) -> TfcClient:
    return _client(fake, ca)


def _read_only(fake: TfcFake, ca: CaFiles) -> TfcClient:
    """A client whose token may read but not write (the fake's run token of a fresh workspace)."""
    fake.add_workspace("reader")
    return _client(fake, ca, token=fake.run_token("reader"))


# ---- the token -----------------------------------------------------------------------------

def test_an_empty_token_is_refused_before_any_call_naming_the_env_key() -> None:
    """FR26: a client without a token fails at once and tells the operator which .env key to set."""
    with pytest.raises(TfcError) as err:
        TfcClient("", "org", base_url="https://127.0.0.1:1")

    assert (err.value.expected, err.value.found, err.value.next_step, str(err.value)) == (
        "a Terraform Cloud API token", "an empty token",
        "set TFE_TOKEN (or TFC_TOKEN) in .env to a user or team API token",
        "Expected a Terraform Cloud API token, but found an empty token. "
        "Next: set TFE_TOKEN (or TFC_TOKEN) in .env to a user or team API token")


def test_the_clients_repr_names_organization_and_api_but_never_the_token(client: TfcClient, fake: TfcFake) -> None:
    """NFR1: a client in a traceback or log line shows where it talks to, never its token, against
    the local Terraform Cloud fake."""
    shown = repr(client)

    assert (TOKEN in shown, fake.organization in shown, f"{fake.url}/api/v2" in shown) == (False, True, True)


def test_without_a_base_url_the_client_talks_to_terraform_cloud_itself() -> None:
    """NFR12: the operator's client goes to Terraform Cloud (app.terraform.io) unless told otherwise."""
    assert "api='https://app.terraform.io/api/v2'" in repr(TfcClient(TOKEN, "org"))


def test_by_default_a_server_certificate_no_system_ca_trusts_is_refused(fake: TfcFake) -> None:
    """NFR1: unless given a CA bundle, the client trusts the system's CAs only: a server presenting a
    certificate of another CA (the fake's throwaway one) is refused as a TLS error before the token
    is sent, against the local Terraform Cloud fake."""
    with pytest.raises(TfcError) as err:
        TfcClient(TOKEN, fake.organization, base_url=fake.url, timeout=5).get_workspace(NETWORK)

    assert (err.value.found.startswith("a connection error (SSLError: "), "CERTIFICATE_VERIFY_FAILED" in err.value.found,
            fake.calls()) == (True, True, [])


def test_a_refused_token_says_401_what_was_being_done_and_how_to_get_a_token(fake: TfcFake, ca: CaFiles) -> None:
    """FR26, NFR1: a token Terraform Cloud refuses ends in an error naming the 401, the workspace
    being read and TFE_TOKEN, without the token, against the local Terraform Cloud fake."""
    wrong = "wrong-token-atlasv1-55555"

    with pytest.raises(TfcError) as err:
        _client(fake, ca, token=wrong).get_workspace(NETWORK)

    assert (err.value.expected, err.value.found, err.value.next_step, wrong in str(err.value)) == (
        f"Terraform Cloud to accept the API token to read workspace {NETWORK!r}",
        "HTTP 401 unauthorized (the token is invalid, expired or revoked)",
        "create a user or team API token in Terraform Cloud and put it in .env as TFE_TOKEN", False)


def test_an_unreachable_api_names_the_address_the_call_and_the_network(fake: TfcFake, ca: CaFiles) -> None:
    """NFR1: when Terraform Cloud cannot be reached, the error says at which address, for which call,
    that it was a connection error, and to check the network; never the token (port 1: nothing listens)."""
    with pytest.raises(TfcError) as err:
        _client(fake, ca, base_url="https://127.0.0.1:1").get_workspace(NETWORK)

    assert (err.value.expected, err.value.found.startswith("a connection error (ConnectionError: "),
            "Connection refused" in err.value.found, err.value.next_step, TOKEN in str(err.value)) == (
        f"an answer from Terraform Cloud at https://127.0.0.1:1/api/v2 to read workspace {NETWORK!r}", True, True,
        "check the network, the base URL, and that the CA bundle trusts the server", False)


def test_a_base_url_with_a_trailing_slash_asks_the_apis_own_paths(canned: tuple[dict, list, str], ca: CaFiles) -> None:
    """NFR12: an address written with a final slash still asks /api/v2/..., not //api/v2/... (which
    only a server that merges slashes would answer). Stand-in: a canned Terraform Cloud recording
    the request line as sent."""
    _, seen, url = canned

    found = _canned_client(ca, url + "/").get_workspace(APP)

    assert (found["id"], [path for path, _, _ in seen]) == ("ws-1", ["/api/v2/organizations/org/workspaces/langfuse-app"])


def test_the_debug_log_names_each_call_and_its_status_but_never_the_token(
        fake: TfcFake, client: TfcClient, caplog: pytest.LogCaptureFixture) -> None:
    """NFR1: with debug logging on, each API call is logged with method, path and status, and the
    token never is, against the local Terraform Cloud fake."""
    caplog.set_level(logging.DEBUG, logger="lfharness.core.tfc")

    client.get_workspace(NETWORK)

    path = f"/organizations/{fake.organization}/workspaces/{NETWORK}"
    assert (f"TFC GET {path} -> 404" in caplog.messages, TOKEN in caplog.text) == (True, False)


# ---- workspaces ----------------------------------------------------------------------------

def test_a_created_workspace_is_returned_and_logged_as_created_in_local_mode(
        fake: TfcFake, client: TfcClient, caplog: pytest.LogCaptureFixture) -> None:
    """FR16, NFR12: ensure_workspace creates a missing workspace, hands back its resource (id and
    name as Terraform Cloud gave them) and tells the operator it created it, against the local
    Terraform Cloud fake."""
    caplog.set_level(logging.INFO, logger="lfharness.core.tfc")

    created = client.ensure_workspace(NETWORK)

    assert (created["id"], created["attributes"]["name"], created["attributes"]["execution-mode"]) == (
        fake.workspace(NETWORK)["id"], NETWORK, "local")
    assert f"Created Terraform Cloud workspace {fake.organization}/{NETWORK} in local execution mode" in caplog.text


def test_an_existing_local_workspace_is_kept_unchanged_and_said_so(
        fake: TfcFake, client: TfcClient, caplog: pytest.LogCaptureFixture) -> None:
    """NFR12: a workspace already in local mode is reused as it is (no create, no update) and the log
    says it exists, against the local Terraform Cloud fake."""
    ws_id = fake.add_workspace(NETWORK, {"execution-mode": "local"})
    caplog.set_level(logging.INFO, logger="lfharness.core.tfc")

    kept = client.ensure_workspace(NETWORK)

    writes = [call for call in fake.calls() if call[0] != "GET"]
    assert (kept["id"], writes) == (ws_id, [])
    assert f"Terraform Cloud workspace {fake.organization}/{NETWORK} exists in local execution mode" in caplog.text


def test_a_remote_workspace_switched_to_local_is_returned_and_logged_with_its_old_mode(
        fake: TfcFake, client: TfcClient, caplog: pytest.LogCaptureFixture) -> None:
    """NFR12 (decision 3): switching a remote workspace to local returns the updated workspace and
    tells the operator which mode it had, against the local Terraform Cloud fake."""
    fake.add_workspace(DEPS, {"execution-mode": "remote"})
    caplog.set_level(logging.INFO, logger="lfharness.core.tfc")

    switched = client.ensure_workspace(DEPS)

    assert switched["attributes"]["execution-mode"] == "local"
    assert f"Switched Terraform Cloud workspace {fake.organization}/{DEPS} from remote to local execution mode" \
        in caplog.messages


def test_a_workspace_the_token_may_not_create_fails_naming_it_the_organization_and_the_fix(
        fake: TfcFake, ca: CaFiles) -> None:
    """FR16: when Terraform Cloud refuses to create a workspace, the error names the workspace, the
    organization, the HTTP status with Terraform Cloud's own reason, and what to check, against the
    local Terraform Cloud fake (a read-only token)."""
    with pytest.raises(TfcError) as err:
        _read_only(fake, ca).ensure_workspace(NETWORK)

    assert (err.value.expected, err.value.found, fake.exists(NETWORK)) == (
        f"workspace {NETWORK!r} to be created in organization {fake.organization!r}", "HTTP 404 (not found)", False)
    assert "TFC_ORGANIZATION" in err.value.next_step and "create workspaces" in err.value.next_step


def test_an_invalid_workspace_name_fails_with_terraform_clouds_reason(client: TfcClient) -> None:
    """FR16: Terraform Cloud's error title and detail reach the operator in the error, against the
    local Terraform Cloud fake (it refuses names with spaces, as the API does)."""
    with pytest.raises(TfcError) as err:
        client.ensure_workspace("bad name")

    assert err.value.found.startswith("HTTP 422 (") and "Name is invalid" in err.value.found


def test_a_remote_workspace_the_token_may_not_switch_fails_naming_both_modes_and_the_setting(
        fake: TfcFake, ca: CaFiles) -> None:
    """NFR12 (decision 3): a remote workspace that cannot be switched ends in an error naming the
    workspace, the mode found and the General settings' Execution Mode, and the workspace stays
    remote, against the local Terraform Cloud fake (a read-only token)."""
    fake.add_workspace(APP, {"execution-mode": "remote"})

    with pytest.raises(TfcError) as err:
        _read_only(fake, ca).ensure_workspace(APP)

    assert (err.value.expected, err.value.found.startswith("HTTP 404"), fake.workspace(APP)["execution-mode"]) == (
        f"workspace {APP!r} to switch from 'remote' to local execution mode", True, "remote")
    assert err.value.next_step == ("set Execution Mode to Local in the workspace's General settings, or use a token "
                                   "with admin rights on it")


def test_a_missing_workspace_error_names_the_organization_and_the_set_up(fake: TfcFake, client: TfcClient) -> None:
    """FR16: reading a workspace that does not exist tells in which organization it was looked for
    and to run the set-up and check TFC_ORGANIZATION, against the local Terraform Cloud fake."""
    with pytest.raises(TfcError) as err:
        client.remote_state_consumers(DEPS)

    assert (err.value.expected, "TFC_ORGANIZATION" in err.value.next_step) == (
        f"workspace {DEPS!r} in organization {fake.organization!r}", True)


def test_a_workspace_of_an_unknown_organization_reads_as_missing(fake: TfcFake, ca: CaFiles) -> None:
    """FR16: a wrong TFC_ORGANIZATION makes the workspaces read as absent (None), which the set-up
    then reports, against the local Terraform Cloud fake."""
    fake.add_workspace(NETWORK)

    found = TfcClient(TOKEN, "other-org", base_url=fake.url, verify=ca.ca, timeout=5).get_workspace(NETWORK)

    assert found is None


# ---- state sharing -------------------------------------------------------------------------

def test_ensure_all_returns_each_workspace_by_name(fake: TfcFake, client: TfcClient) -> None:
    """FR16/FR17: ensure_all hands back every workspace it made sure of, by name, with Terraform
    Cloud's ids, against the local Terraform Cloud fake."""
    made = client.ensure_all(READERS)

    assert {name: ws["id"] for name, ws in made.items()} == {name: fake.workspace(name)["id"] for name in READERS}


def test_ensure_all_refuses_a_reader_that_is_not_one_of_the_workspaces(fake: TfcFake, client: TfcClient) -> None:
    """FR17: a reader missing from the registry is named in the error before anything is created,
    against the local Terraform Cloud fake."""
    with pytest.raises(TfcError) as err:
        client.ensure_all({NETWORK: [DEPS, "langfuse-typo"], DEPS: []})

    assert (err.value.expected, err.value.found, err.value.next_step, fake.exists(NETWORK)) == (
        "the workspaces that read a state", "['langfuse-typo'], which are not workspaces here",
        "name every reader as a workspace too", False)


def test_sharing_adds_only_the_missing_readers_and_keeps_the_present_ones(
        fake: TfcFake, client: TfcClient, caplog: pytest.LogCaptureFixture) -> None:
    """FR16/FR17: a state already shared with deps, shared with deps and app, ends shared with both,
    and the log names the one added, against the local Terraform Cloud fake."""
    for name in READERS:
        client.ensure_workspace(name)
    client.share_state(NETWORK, [DEPS])
    caplog.set_level(logging.INFO, logger="lfharness.core.tfc")

    client.share_state(NETWORK, [DEPS, APP])

    assert sorted(client.remote_state_consumers(NETWORK)) == sorted([DEPS, APP])
    assert f"Shared state of {NETWORK} with {APP}" in caplog.messages


def test_sharing_with_two_new_readers_names_both(
        fake: TfcFake, client: TfcClient, caplog: pytest.LogCaptureFixture) -> None:
    """FR16/FR17: the log names every reader a state was shared with, against the local Terraform
    Cloud fake."""
    for name in READERS:
        client.ensure_workspace(name)
    caplog.set_level(logging.INFO, logger="lfharness.core.tfc")

    client.share_state(NETWORK, [DEPS, APP])

    assert f"Shared state of {NETWORK} with {DEPS}, {APP}" in caplog.messages


def test_sharing_with_readers_already_present_changes_nothing_and_says_so(
        fake: TfcFake, client: TfcClient, caplog: pytest.LogCaptureFixture) -> None:
    """FR16/FR17, NFR12: re-running the set-up posts no sharing change and logs that the state is
    already shared, against the local Terraform Cloud fake."""
    client.ensure_all(READERS)
    caplog.set_level(logging.INFO, logger="lfharness.core.tfc")
    before = len(fake.calls())

    client.share_state(NETWORK, [DEPS, APP])

    posts = [call for call in fake.calls()[before:] if call[0] == "POST"]
    assert (posts, f"State of {NETWORK} is already shared with {DEPS}, {APP}" in caplog.messages) == ([], True)


def test_sharing_the_token_may_not_change_fails_naming_the_setting_to_change(fake: TfcFake, ca: CaFiles) -> None:
    """FR16/FR17: when Terraform Cloud refuses the sharing, the error names the source, the readers
    missing and where in the settings to add them, against the local Terraform Cloud fake (a
    read-only token)."""
    for name in READERS:
        fake.add_workspace(name, {"execution-mode": "local"})

    with pytest.raises(TfcError) as err:
        _read_only(fake, ca).share_state(NETWORK, [DEPS, APP])

    assert (err.value.expected, err.value.found.startswith("HTTP 404"), err.value.next_step) == (
        f"{NETWORK!r} to share its state with {DEPS}, {APP}", True,
        f"in {NETWORK!r}'s settings, under Remote state sharing, add {DEPS}, {APP}")


def test_more_readers_than_one_page_are_all_listed(fake: TfcFake, client: TfcClient) -> None:
    """FR17: the readers of a state are read across every page of the API's answer (100 a page),
    against the local Terraform Cloud fake."""
    readers = [f"reader-{i:03d}" for i in range(105)]
    client.ensure_workspace(NETWORK)
    for name in readers:
        fake.add_workspace(name)

    client.share_state(NETWORK, readers)

    assert sorted(client.remote_state_consumers(NETWORK)) == readers


# ---- outputs -------------------------------------------------------------------------------

def test_outputs_carry_value_type_sensitivity_and_id(fake: TfcFake, client: TfcClient) -> None:
    """FR16/FR17: each output comes with its value, JSON type, sensitivity and id, against the local
    Terraform Cloud fake."""
    fake.set_outputs(NETWORK, {"zones": (["a", "b"], False), "count": (2, False)})

    outputs = client.outputs(NETWORK)

    assert {n: (o.name, o.value, o.type, o.sensitive) for n, o in outputs.items()} == {
        "zones": ("zones", ["a", "b"], "array", False), "count": ("count", 2, "number", False)}
    assert all(o.id.startswith("wsout-") for o in outputs.values())


def test_revealing_reads_only_the_sensitive_outputs_one_by_one(fake: TfcFake, client: TfcClient) -> None:
    """FR17, NFR1: reveal_sensitive reads each sensitive value by id, and only those: the plain ones
    come from the list, against the local Terraform Cloud fake."""
    fake.set_outputs(DEPS, {"rds_password": ("pw-1", True), "rds_endpoint": ("db:5432", False)})
    before = len(fake.calls())

    outputs = client.outputs(DEPS, reveal_sensitive=True)

    reads = [path for _, path in fake.calls()[before:] if path.startswith("/api/v2/state-version-outputs/")]
    assert ((outputs["rds_password"].value, outputs["rds_password"].sensitive, outputs["rds_endpoint"].value),
            reads) == (("pw-1", True, "db:5432"), [f"/api/v2/state-version-outputs/{outputs['rds_password'].id}"])


def test_more_outputs_than_one_page_are_all_read(fake: TfcFake, client: TfcClient) -> None:
    """FR16: a workspace's outputs are read across every page of the API's answer, against the local
    Terraform Cloud fake."""
    fake.set_outputs(NETWORK, {f"out_{i:03d}": (i, False) for i in range(130)})

    outputs = client.outputs(NETWORK)

    assert (len(outputs), outputs["out_129"].value) == (130, 129)


def test_outputs_before_the_first_apply_fail_saying_to_apply_or_share(fake: TfcFake, client: TfcClient) -> None:
    """FR16: outputs of a workspace never applied end in an error naming the workspace's outputs,
    the 404 and both fixes (apply it, share its state), against the local Terraform Cloud fake."""
    fake.add_workspace(NETWORK)

    with pytest.raises(TfcError) as err:
        client.outputs(NETWORK)

    assert (err.value.expected, err.value.found.startswith("HTTP 404"), err.value.next_step) == (
        f"outputs of workspace {NETWORK!r}", True,
        f"apply {NETWORK!r} first; if another workspace's token reads it, share {NETWORK!r}'s state with that workspace")


def test_outputs_still_processing_past_the_wait_name_the_call_and_the_503(fake: TfcFake, ca: CaFiles) -> None:
    """FR16, issue 10 item 15: a 503 that outlasts the bounded wait names the read, the wait and the
    503 with Terraform Cloud's reason, and says to retry later, against the local Terraform Cloud fake."""
    fake.set_outputs(NETWORK, {"vpc_id": ("vpc-1", False)})
    fake.outputs_still_processing(NETWORK, reads=10**6)
    patient = TfcClient(TOKEN, fake.organization, base_url=fake.url, verify=ca.ca, timeout=5,
                        processing_timeout=0.4, processing_interval=0.05)

    with pytest.raises(TfcError) as err:
        patient.outputs(NETWORK)

    assert (err.value.expected, err.value.next_step) == (
        f"Terraform Cloud to read {NETWORK!r}'s outputs within 0.4s",
        "retry in a few minutes; if it persists, check Terraform Cloud's status page")
    assert err.value.found.startswith(
        f"it still answered 503 (outputs being processed): gave up waiting for Terraform Cloud to read {NETWORK!r}'s "
        "outputs after ") and err.value.found.endswith(
        "last: _StillProcessing: HTTP 503 (Service Unavailable state version outputs are still being processed; "
        "retry the request)")


# ---- state ---------------------------------------------------------------------------------

STATE = {"version": 4, "serial": 7, "lineage": "l-1", "resources": [],
         "outputs": {"vpc_id": {"value": "vpc-1", "type": "string"}}}


def test_current_state_is_none_before_the_first_apply(fake: TfcFake, client: TfcClient) -> None:
    """The teardown of a workspace never applied: no state version reads as None, not as an error,
    against the local Terraform Cloud fake."""
    fake.add_workspace(APP)

    assert client.current_state(APP) is None


def test_current_state_is_the_raw_state_document(fake: TfcFake, client: TfcClient) -> None:
    """The raw terraform.tfstate document of the current version is read from its download URL,
    against the local Terraform Cloud fake."""
    fake.set_state(APP, STATE)

    state = client.current_state(APP)

    assert state is not None and (state["serial"], state["lineage"], state["outputs"]) == (7, "l-1", STATE["outputs"])


def test_current_state_from_another_host_is_downloaded_with_the_ca_bundle(fake: TfcFake, ca: CaFiles) -> None:
    """NFR1: a download URL on another host than the API's (here 127.0.0.1 while the API is reached
    as localhost) is fetched without the client's session and still trusts the configured CA,
    against the local Terraform Cloud fake."""
    fake.set_state(APP, STATE)
    client = _client(fake, ca, base_url=fake.url.replace("127.0.0.1", "localhost"))

    state = client.current_state(APP)

    assert state is not None and state["serial"] == 7


def test_a_state_version_without_download_url_fails_saying_to_retry(fake: TfcFake, client: TfcClient) -> None:
    """A state version the API has not finished (no download URL yet) ends in an error naming the
    workspace's state and saying to retry, against the local Terraform Cloud fake (outputs only)."""
    fake.set_outputs(APP, {"x": (1, False)})

    with pytest.raises(TfcError) as err:
        client.current_state(APP)

    assert (err.value.expected, err.value.found, err.value.next_step) == (
        f"a download URL for {APP!r}'s current state", "none in the state version",
        "retry in a minute (the upload may still be processed); check the token's state access")


def test_a_state_version_the_token_may_not_read_fails_naming_it(fake: TfcFake, ca: CaFiles) -> None:
    """A state version a token may not read (another workspace's, unshared) is reported as absent
    (None), as Terraform Cloud hides it with 404, against the local Terraform Cloud fake."""
    fake.set_state(APP, STATE)

    assert _read_only(fake, ca).current_state(APP) is None


# ---- locks ---------------------------------------------------------------------------------

def test_an_unlocked_workspace_is_left_alone(fake: TfcFake, client: TfcClient) -> None:
    """Issue 24 item 2: force_unlock_if_locked on a free workspace answers False and sends no
    force-unlock, against the local Terraform Cloud fake."""
    fake.add_workspace(DEPS)

    released = client.force_unlock_if_locked(DEPS)

    assert (released, [c for c in fake.calls() if c[1].endswith("/force-unlock")]) == (False, [])


def test_a_lock_released_meanwhile_counts_as_released(fake: TfcFake, client: TfcClient) -> None:
    """Issue 24 item 2: Terraform Cloud's 409 to a force-unlock (the lock went meanwhile) is success,
    against the local Terraform Cloud fake."""
    fake.add_workspace(DEPS)
    fake.lock_workspace(DEPS)
    fake.refuse_force_unlock(DEPS, status=409)

    assert client.force_unlock_if_locked(DEPS) is True


def test_a_refused_force_unlock_says_where_to_unlock_by_hand(fake: TfcFake, client: TfcClient) -> None:
    """Issue 24 item 2: a force-unlock the token may not do ends in an error naming the workspace's
    lock, the 403 and the Locking setting, and the lock stays, against the local Terraform Cloud fake."""
    fake.add_workspace(DEPS)
    fake.lock_workspace(DEPS)
    fake.refuse_force_unlock(DEPS, status=403)

    with pytest.raises(TfcError) as err:
        client.force_unlock_if_locked(DEPS)

    assert (err.value.expected, err.value.found.startswith("HTTP 403 (refused force-unlock refused"),
            err.value.next_step, fake.locked(DEPS)) == (
        f"the lock on {DEPS!r} released", True,
        "unlock it in Terraform Cloud (Settings -> Locking), then re-run the teardown", True)


# ---- answers the fake never gives: a canned Terraform Cloud ----------------------------------

class _Canned(BaseHTTPRequestHandler):
    """Answers each GET, POST or PATCH path with its canned (status, body) and records each request's
    path as sent (http.server reduces a leading // in self.path), Authorization and Accept."""

    server: httpserver.Server

    def do_GET(self) -> None:  # http.server dispatches on do_<METHOD>
        answers, seen = self.server.state
        seen.append((self.requestline.split(" ")[1], self.headers.get("Authorization"), self.headers.get("Accept")))
        status, body, *delay = answers.get(self.path, (404, {"errors": [{"title": "not found"}]}))
        time.sleep(delay[0] if delay else 0)  # a server that stalls before it answers
        try:
            if isinstance(body, str):
                return httpserver.send_bytes(self, HTTPStatus(status), body.encode(), "text/html")
            return httpserver.send_json(self, HTTPStatus(status), body)
        except OSError:  # the client gave up first (the stalled download's timeout)
            return None

    def do_POST(self) -> None:  # the force-unlock
        self.do_GET()

    def do_PATCH(self) -> None:  # the switch to local execution mode
        self.do_GET()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's signature)
        pass  # the request lines are the test's own


@pytest.fixture
def canned(ca: CaFiles) -> Iterator[tuple[dict, list, str]]:
    """A canned Terraform Cloud over HTTPS: (answers by path, (path, Authorization, Accept) seen, base URL)."""
    answers: dict[str, tuple[int, object]] = {}
    seen: list[tuple[str, str | None, str | None]] = []
    with httpserver.LocalServer(_Canned, (answers, seen), tls=httpserver.tls_context(ca.cert, ca.key),
                                name="tfc-canned") as server:
        answers["/api/v2/organizations/org/workspaces/langfuse-app"] = (200, {"data": {
            "id": "ws-1", "type": "workspaces", "attributes": {"name": APP, "locked": False}}})
        yield answers, seen, server.url


def _state_at(answers: dict, url: str | None) -> None:
    answers["/api/v2/workspaces/ws-1/current-state-version"] = (200, {"data": {
        "id": "sv-1", "attributes": {"hosted-state-download-url": url}}})


def _canned_client(ca: CaFiles, base_url: str) -> TfcClient:
    return TfcClient(TOKEN, "org", base_url=base_url, verify=ca.ca, timeout=5)


@pytest.mark.parametrize("same_host", [True, False], ids=["api-host", "other-host"])
def test_the_token_goes_to_a_state_download_url_only_on_the_apis_own_host(
        canned: tuple[dict, list, str], ca: CaFiles, same_host: bool) -> None:
    """NFR1: the signed state download URL is fetched with the API token only when it is on the API's
    own host; on another host (here localhost while the API is 127.0.0.1) without it. Stand-in: a
    canned Terraform Cloud over HTTPS."""
    answers, seen, url = canned
    download = url if same_host else url.replace("127.0.0.1", "localhost")
    _state_at(answers, f"{download}/archivist/state-1")
    answers["/archivist/state-1"] = (200, STATE)

    state = _canned_client(ca, url).current_state(APP)

    sent = [auth for path, auth, _ in seen if path == "/archivist/state-1"]
    assert (state, sent) == (STATE, [f"Bearer {TOKEN}" if same_host else None])


def test_a_state_download_refused_says_the_signed_url_may_have_expired(
        canned: tuple[dict, list, str], ca: CaFiles) -> None:
    """A download URL answering an error is reported with its status and the likely cause, never the
    (signed) URL. Stand-in: a canned Terraform Cloud."""
    answers, _, url = canned
    _state_at(answers, f"{url}/archivist/state-1?signature=s1gned")
    answers["/archivist/state-1?signature=s1gned"] = (403, {})

    with pytest.raises(TfcError) as err:
        _canned_client(ca, url).current_state(APP)

    assert (err.value.expected, err.value.found, err.value.next_step, "s1gned" in str(err.value)) == (
        f"{APP!r}'s state from its download URL", "HTTP 403", "retry; the signed URL may have expired", False)


def test_an_unreachable_state_download_names_no_url(canned: tuple[dict, list, str], ca: CaFiles) -> None:
    """A download URL that cannot be reached is reported as a connection error without the signed
    URL. Stand-in: a canned Terraform Cloud whose URL points at port 1 (nothing listens)."""
    answers, _, url = canned
    _state_at(answers, "https://127.0.0.1:1/archivist/state-1?signature=s1gned")

    with pytest.raises(TfcError) as err:
        _canned_client(ca, url).current_state(APP)

    assert (err.value.expected, err.value.found, err.value.next_step, "s1gned" in str(err.value)) == (
        f"{APP!r}'s state from its download URL", "a connection error (ConnectionError)",
        "check the network and retry", False)


def test_a_failing_state_version_read_names_the_workspace_and_the_status(
        canned: tuple[dict, list, str], ca: CaFiles) -> None:
    """An error other than 404 on the state version is reported with the workspace and Terraform
    Cloud's own reason. Stand-in: a canned Terraform Cloud."""
    answers, _, url = canned
    answers["/api/v2/workspaces/ws-1/current-state-version"] = (500, {"errors": [{"title": "internal"}]})

    with pytest.raises(TfcError) as err:
        _canned_client(ca, url).current_state(APP)

    assert (err.value.expected, err.value.found, err.value.next_step) == (
        f"the current state version of {APP!r}", "HTTP 500 (internal)",
        "check that the token may read the workspace's state versions")


def test_an_error_page_that_is_not_json_is_reported_by_its_status_alone(
        canned: tuple[dict, list, str], ca: CaFiles) -> None:
    """A proxy's HTML error page is reported as its HTTP status, not as a decoding error. Stand-in:
    a canned Terraform Cloud answering 502 with HTML."""
    answers, _, url = canned
    answers["/api/v2/organizations/org/workspaces/langfuse-app"] = (502, "<html>Bad Gateway</html>")

    with pytest.raises(TfcError) as err:
        _canned_client(ca, url).get_workspace(APP)

    assert (err.value.found, err.value.expected) == ("HTTP 502", f"workspace {APP!r} in organization 'org'")


def test_terraform_clouds_error_list_is_shown_title_and_detail_each_with_the_token_masked(
        canned: tuple[dict, list, str], ca: CaFiles) -> None:
    """NFR1: every error Terraform Cloud lists is shown (title and detail; a plain string as it is;
    an empty one skipped) and an echoed token is masked. Stand-in: a canned Terraform Cloud."""
    answers, _, url = canned
    answers["/api/v2/organizations/org/workspaces/langfuse-app"] = (400, {"errors": [
        {"title": "bad", "detail": f"token {TOKEN} refused"}, "plain", {"title": "only title"}, {}]})

    with pytest.raises(TfcError) as err:
        _canned_client(ca, url).get_workspace(APP)

    assert err.value.found == "HTTP 400 (bad token *** refused; plain; only title)"


def test_a_sensitive_output_that_cannot_be_revealed_names_it(canned: tuple[dict, list, str], ca: CaFiles) -> None:
    """FR17: when reading a sensitive output's value is refused, the error names the workspace and
    the output and says what the token needs. Stand-in: a canned Terraform Cloud."""
    answers, _, url = canned
    answers["/api/v2/workspaces/ws-1/current-state-version-outputs?page%5Bnumber%5D=1&page%5Bsize%5D=100"] = (
        200, {"data": [{"id": "wsout-1", "attributes": {"name": "rds_password", "sensitive": True, "value": None,
                                                        "type": "string"}}], "meta": {}})
    answers["/api/v2/state-version-outputs/wsout-1"] = (403, {"errors": [{"title": "forbidden"}]})

    with pytest.raises(TfcError) as err:
        _canned_client(ca, url).outputs(APP, reveal_sensitive=True)

    assert (err.value.expected, err.value.found, err.value.next_step) == (
        f"the value of sensitive output {APP}.rds_password", "HTTP 403 (forbidden)",
        "check that the token may read state versions of the workspace")


OUTPUTS_PAGE_1 = "/api/v2/workspaces/ws-1/current-state-version-outputs?page%5Bnumber%5D=1&page%5Bsize%5D=100"
CONSUMERS_PAGE_1 = "/api/v2/workspaces/ws-1/relationships/remote-state-consumers?page%5Bnumber%5D=1&page%5Bsize%5D=100"
SECRET_OUTPUT = (200, {"data": [{"id": "wsout-1", "attributes": {"name": "rds_password", "sensitive": True,
                                                                "value": None, "type": "string"}}], "meta": {}})


@pytest.mark.parametrize("refused", ["force-unlock", "state version", "sensitive output", "outputs", "readers",
                                     "sharing", "create", "switch"])
def test_a_token_refused_mid_way_names_the_call_it_was_refused_for(
        canned: tuple[dict, list, str], ca: CaFiles, refused: str) -> None:
    """FR26, NFR1: a 401 on any call (a token revoked between two calls) names that call, says
    HTTP 401 and how to get a token, at once (no wait for outputs being processed). Stand-in: a
    canned Terraform Cloud."""
    answers, _, url = canned
    answers["/api/v2/organizations/org/workspaces/langfuse-app"] = (200, {"data": {
        "id": "ws-1", "type": "workspaces", "attributes": {"name": APP, "locked": True}}})
    answers[OUTPUTS_PAGE_1] = SECRET_OUTPUT
    answers[CONSUMERS_PAGE_1] = (200, {"data": [], "meta": {}})
    path, call, action = {
        "force-unlock": ("/api/v2/workspaces/ws-1/actions/force-unlock", f"force-unlock {APP!r}",
                         lambda c: c.force_unlock_if_locked(APP)),
        "state version": ("/api/v2/workspaces/ws-1/current-state-version", f"read {APP!r}'s state version",
                          lambda c: c.current_state(APP)),
        "sensitive output": ("/api/v2/state-version-outputs/wsout-1", f"read {APP}.rds_password",
                             lambda c: c.outputs(APP, reveal_sensitive=True)),
        "outputs": (OUTPUTS_PAGE_1, f"read {APP!r}'s outputs", lambda c: c.outputs(APP)),
        "readers": (CONSUMERS_PAGE_1, f"list who may read {APP!r}'s state", lambda c: c.remote_state_consumers(APP)),
        "create": ("/api/v2/organizations/org/workspaces", "create workspace 'langfuse-new'",
                   lambda c: c.ensure_workspace("langfuse-new")),
        "sharing": ("/api/v2/workspaces/ws-1/relationships/remote-state-consumers", f"share {APP!r}'s state",
                    lambda c: c.share_state(APP, [APP])),
        "switch": ("/api/v2/workspaces/ws-1", f"switch workspace {APP!r} to local execution mode",
                   lambda c: c.ensure_workspace(APP)),
    }[refused]
    answers[path] = (401, {"errors": [{"title": "unauthorized"}]})
    client = TfcClient(TOKEN, "org", base_url=url, verify=ca.ca, timeout=5, processing_timeout=30,
                       processing_interval=0.05)
    started = time.monotonic()

    with pytest.raises(TfcError) as err:
        action(client)

    assert (err.value.expected, err.value.found.startswith("HTTP 401"), time.monotonic() - started < 10) == (
        f"Terraform Cloud to accept the API token to {call}", True, True)


def test_an_error_answer_without_an_error_list_is_reported_by_its_status_alone(
        canned: tuple[dict, list, str], ca: CaFiles) -> None:
    """An error answer whose JSON lists no errors is reported as its HTTP status, not as a crash of
    the client. Stand-in: a canned Terraform Cloud."""
    answers, _, url = canned
    answers["/api/v2/organizations/org/workspaces/langfuse-app"] = (500, {})

    with pytest.raises(TfcError) as err:
        _canned_client(ca, url).get_workspace(APP)

    assert (err.value.expected, err.value.found, err.value.next_step) == (
        f"workspace {APP!r} in organization 'org'", "HTTP 500",
        "retry; if it persists, check Terraform Cloud's status page")


@pytest.mark.parametrize("same_host", [True, False], ids=["api-host", "other-host"])
def test_a_stalled_state_download_ends_at_the_clients_timeout(
        canned: tuple[dict, list, str], ca: CaFiles, same_host: bool) -> None:
    """A state download that stalls ends at the client's timeout as a connection error, instead of
    hanging the command. Stand-in: a canned Terraform Cloud that answers after 3 s (timeout 0.5 s)."""
    answers, _, url = canned
    download = url if same_host else url.replace("127.0.0.1", "localhost")
    _state_at(answers, f"{download}/archivist/slow")
    answers["/archivist/slow"] = (200, STATE, 3)

    with pytest.raises(TfcError) as err:
        TfcClient(TOKEN, "org", base_url=url, verify=ca.ca, timeout=0.5).current_state(APP)

    assert err.value.found == "a connection error (ReadTimeout)"


def test_a_stalled_api_answer_ends_at_the_clients_timeout(canned: tuple[dict, list, str], ca: CaFiles) -> None:
    """An API call Terraform Cloud does not answer ends at the client's timeout as a connection error
    naming the call, instead of hanging the command. Stand-in: a canned Terraform Cloud that answers
    after 3 s (timeout 0.5 s)."""
    answers, _, url = canned
    answers["/api/v2/organizations/org/workspaces/langfuse-app"] = (200, {"data": {"id": "ws-1"}}, 3)
    started = time.monotonic()

    with pytest.raises(TfcError) as err:
        TfcClient(TOKEN, "org", base_url=url, verify=ca.ca, timeout=0.5).get_workspace(APP)

    assert (err.value.expected, err.value.found.startswith("a connection error (ReadTimeout: "),
            "Read timed out" in err.value.found, time.monotonic() - started < 2.5) == (
        f"an answer from Terraform Cloud at {url}/api/v2 to read workspace {APP!r}", True, True, True)


def test_every_api_call_asks_for_json_api_with_the_token(canned: tuple[dict, list, str], ca: CaFiles) -> None:
    """FR26: each call sends the token as a Bearer header and asks for the JSON:API documents
    Terraform Cloud's API speaks (a read and a write here). Stand-in: a canned Terraform Cloud."""
    answers, seen, url = canned
    answers["/api/v2/organizations/org/workspaces/langfuse-app"] = (200, {"data": {
        "id": "ws-1", "type": "workspaces", "attributes": {"name": APP, "locked": True}}})
    answers["/api/v2/workspaces/ws-1/actions/force-unlock"] = (200, {"data": {"id": "ws-1"}})

    _canned_client(ca, url).force_unlock_if_locked(APP)

    assert seen == [("/api/v2/organizations/org/workspaces/langfuse-app", f"Bearer {TOKEN}", JSON_API),
                    ("/api/v2/workspaces/ws-1/actions/force-unlock", f"Bearer {TOKEN}", JSON_API)]


def test_readers_that_cannot_be_listed_fail_naming_the_workspace_and_the_rights_needed(
        canned: tuple[dict, list, str], ca: CaFiles) -> None:
    """FR17: when the readers of a state cannot be listed, the error names the workspace and says the
    token needs admin rights on it. Stand-in: a canned Terraform Cloud."""
    answers, _, url = canned
    answers[CONSUMERS_PAGE_1] = (403, {"errors": [{"title": "forbidden"}]})

    with pytest.raises(TfcError) as err:
        _canned_client(ca, url).remote_state_consumers(APP)

    assert (err.value.expected, err.value.found, err.value.next_step) == (
        f"the remote state consumers of {APP!r}", "HTTP 403 (forbidden)",
        "check that the token has admin rights on the workspace")


def test_a_503_on_the_readers_list_fails_at_once(canned: tuple[dict, list, str], ca: CaFiles) -> None:
    """FR17: only the outputs are waited for while Terraform Cloud processes them; a 503 elsewhere (an
    outage) is reported at once with its status. Stand-in: a canned Terraform Cloud."""
    answers, _, url = canned
    answers[CONSUMERS_PAGE_1] = (503, {"errors": [{"title": "unavailable"}]})
    client = TfcClient(TOKEN, "org", base_url=url, verify=ca.ca, timeout=5, processing_timeout=30,
                       processing_interval=0.05)
    started = time.monotonic()

    with pytest.raises(TfcError) as err:
        client.remote_state_consumers(APP)

    assert (err.value.found, time.monotonic() - started < 10) == ("HTTP 503 (unavailable)", True)


def test_a_list_answer_without_data_reads_as_empty(canned: tuple[dict, list, str], ca: CaFiles) -> None:
    """FR17: a list answer without a `data` member means no readers, not a crash. Stand-in: a canned
    Terraform Cloud."""
    answers, _, url = canned
    answers[CONSUMERS_PAGE_1] = (200, {"meta": {}})

    assert _canned_client(ca, url).remote_state_consumers(APP) == []
