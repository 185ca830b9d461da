"""Terraform Cloud set-up and the output contract, against the local Terraform Cloud fake."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import certifi
import pytest
import requests

from lfharness.core.tfc import TfcClient, TfcError
from lfharness.stack import workspaces
from lfharness.testing.localca import CaFiles, write_ca_bundle
from lfharness.testing.tfc_fake import JSONAPI, TfcFake

pytestmark = pytest.mark.static

TOKEN = "test-token-9f3Kq.atlasv1.NOT-A-REAL-SECRET"
WORKSPACES = tuple(workspaces.TFC_NAMES.values())
NETWORK, DEPS, APP = WORKSPACES
READERS = workspaces.state_readers()

# Output contract (names -> sensitive): 01-network/outputs.tf and 02-deps/outputs.tf.
NETWORK_OUTPUTS = {
    "vpc_id": False,
    "public_subnet_ids": False,
    "cluster_name": False,
    "cluster_endpoint": False,
    "cluster_ca_data": False,
    "oidc_provider_arn": False,
    "node_security_group_id": False,
}
DEPS_OUTPUTS = {
    "rds_endpoint": False,
    "rds_password": True,
    "s3_bucket_name": False,
    "s3_bucket_region": False,
    "irsa_role_arn": False,
}
CONTRACT = {NETWORK: NETWORK_OUTPUTS, DEPS: DEPS_OUTPUTS}


def _seed(fake: TfcFake, workspace: str) -> None:
    """Give `workspace` a state version with its contract outputs (value = f"{name}-value")."""
    fake.set_outputs(workspace, {name: (f"{name}-value", sensitive) for name, sensitive in CONTRACT[workspace].items()})


@pytest.fixture
def fake(ca: CaFiles) -> Iterator[TfcFake]:
    with TfcFake(ca, TOKEN) as running:
        yield running


def _client(fake: TfcFake, ca: CaFiles, token: str = TOKEN) -> TfcClient:
    return TfcClient(token, fake.organization, base_url=fake.url, verify=ca.ca, timeout=5)


@pytest.fixture
def client(fake: TfcFake, ca: CaFiles) -> TfcClient:
    return _client(fake, ca)


def test_ensure_workspaces_creates_three_in_local_execution_mode(fake: TfcFake, client: TfcClient) -> None:
    """FR16/FR17, NFR12: ensure_all creates network, deps and app in local execution mode, against the local Terraform Cloud fake."""
    client.ensure_all(READERS)

    assert {name: fake.workspace(name)["execution-mode"] for name in WORKSPACES} == dict.fromkeys(WORKSPACES, "local")


def test_ensure_workspace_switches_an_existing_remote_workspace_to_local(fake: TfcFake, client: TfcClient) -> None:
    """NFR12 (decision 3): a workspace that already exists in remote execution mode is switched to local, against the local Terraform Cloud fake."""
    fake.add_workspace(NETWORK, {"execution-mode": "remote"})

    client.ensure_workspace(NETWORK)

    assert fake.workspace(NETWORK)["execution-mode"] == "local"


def test_ensure_all_twice_keeps_one_workspace_per_name(fake: TfcFake, client: TfcClient) -> None:
    """NFR12: re-running the set-up reuses the workspaces instead of creating or failing, against the local Terraform Cloud fake."""
    first = {name: ws["id"] for name, ws in client.ensure_all(READERS).items()}

    second = {name: ws["id"] for name, ws in client.ensure_all(READERS).items()}

    assert second == first


@pytest.mark.parametrize("reader", [DEPS, APP])
def test_state_sharing_lets_deps_and_app_read_network(
    fake: TfcFake, ca: CaFiles, client: TfcClient, reader: str
) -> None:
    """FR16/FR17: after ensure_all, a run of deps or app reads network's outputs with its own token, against the local Terraform Cloud fake."""
    client.ensure_all(READERS)
    _seed(fake, NETWORK)

    outputs = _client(fake, ca, token=fake.run_token(reader)).outputs(NETWORK)

    assert set(outputs) == set(NETWORK_OUTPUTS)


def test_state_sharing_lets_app_read_deps(fake: TfcFake, ca: CaFiles, client: TfcClient) -> None:
    """FR17: after ensure_all, a run of app reads deps' outputs with its own token, against the local Terraform Cloud fake."""
    client.ensure_all(READERS)
    _seed(fake, DEPS)

    outputs = _client(fake, ca, token=fake.run_token(APP)).outputs(DEPS)

    assert set(outputs) == set(DEPS_OUTPUTS)


def test_state_sharing_is_downstream_only(fake: TfcFake, client: TfcClient) -> None:
    """FR16/FR17: ensure_all shares each state only with the workspaces that read it, against the local Terraform Cloud fake."""
    client.ensure_all(READERS)

    shared = {name: sorted(fake.workspace(name)["remote-state-consumers"]) for name in WORKSPACES}

    assert shared == {NETWORK: sorted([DEPS, APP]), DEPS: [APP], APP: []}


def test_without_sharing_tfe_outputs_sees_an_empty_object(fake: TfcFake, ca: CaFiles) -> None:
    """FR16 (decision 12): unshared state makes the tfe_outputs read (workspace include=outputs) silently empty, against the local Terraform Cloud fake."""
    for name in WORKSPACES:
        fake.add_workspace(name)
    _seed(fake, NETWORK)
    url = f"{fake.url}/api/v2/organizations/{fake.organization}/workspaces/{NETWORK}"

    resp = requests.get(
        url,
        params={"include": "outputs"},
        verify=str(ca.ca),
        timeout=5,
        headers={"Authorization": f"Bearer {fake.run_token(DEPS)}"},
    )

    assert (resp.status_code, resp.json().get("included", [])) == (200, [])


def test_unknown_workspace_is_rejected_with_404(fake: TfcFake, ca: CaFiles) -> None:
    """NFR12: reading a workspace that does not exist gets a 404 JSON:API error, against the local Terraform Cloud fake."""
    url = f"{fake.url}/api/v2/organizations/{fake.organization}/workspaces/no-such-workspace"

    resp = requests.get(url, verify=str(ca.ca), timeout=5, headers={"Authorization": f"Bearer {TOKEN}"})

    assert (resp.status_code, resp.headers["Content-Type"], resp.json()["errors"][0]["status"]) == (404, JSONAPI, "404")


def test_get_workspace_returns_none_for_unknown_workspace(client: TfcClient) -> None:
    """NFR12: the client reports a missing workspace as None, not as an error, against the local Terraform Cloud fake."""
    assert client.get_workspace("no-such-workspace") is None


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token"}], ids=["no-token", "wrong-token"])
def test_requests_without_token_are_refused(fake: TfcFake, ca: CaFiles, headers: dict[str, str]) -> None:
    """FR26, NFR1: API calls without the operator's token get 401, against the local Terraform Cloud fake."""
    fake.add_workspace(NETWORK)
    url = f"{fake.url}/api/v2/organizations/{fake.organization}/workspaces/{NETWORK}"

    resp = requests.get(url, verify=str(ca.ca), timeout=5, headers=headers)

    assert resp.status_code == 401


def test_missing_workspace_error_says_expected_found_and_next_step(client: TfcClient) -> None:
    """FR16: reading outputs of a missing workspace raises TfcError naming the workspace and the fix, against the local Terraform Cloud fake."""
    with pytest.raises(TfcError) as err:
        client.outputs(NETWORK)

    assert NETWORK in err.value.expected
    assert "no such workspace" in err.value.found
    assert "ensure_all" in err.value.next_step


@pytest.mark.parametrize("case", ["refused-token", "missing-workspace", "no-state-yet", "unreachable-host"])
def test_errors_never_contain_the_token(
    fake: TfcFake, ca: CaFiles, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    """NFR1: TfcError messages and the harness logs never contain the API token, against the local Terraform Cloud fake."""
    token = "wrong-token-atlasv1-0123456789" if case == "refused-token" else TOKEN
    base_url = "https://127.0.0.1:1" if case == "unreachable-host" else fake.url  # port 1: nothing listens
    if case == "no-state-yet":
        fake.add_workspace(NETWORK)  # exists, never applied: the API answers 404 for its outputs
    tfc = TfcClient(token, fake.organization, base_url=base_url, verify=ca.ca, timeout=5)
    caplog.set_level(logging.DEBUG)

    with pytest.raises(TfcError) as err:
        tfc.outputs(NETWORK)

    assert token not in f"{err.value} {err.value!r} {tfc!r} {caplog.text}"


@pytest.mark.parametrize("workspace", [NETWORK, DEPS])
def test_outputs_follow_the_contract(fake: TfcFake, client: TfcClient, workspace: str) -> None:
    """FR16/FR17, NFR11: the client reads each contract output with its sensitivity (7 from network, 5 from deps), against the local Terraform Cloud fake."""
    client.ensure_all(READERS)
    _seed(fake, workspace)

    outputs = client.outputs(workspace)

    assert {name: out.sensitive for name, out in outputs.items()} == CONTRACT[workspace]


def test_sensitive_outputs_are_hidden_unless_revealed(fake: TfcFake, client: TfcClient) -> None:
    """FR17, NFR1: rds_password reads as None by default and as its value when revealed, against the local Terraform Cloud fake."""
    client.ensure_all(READERS)
    _seed(fake, DEPS)

    hidden = client.outputs(DEPS)["rds_password"].value
    revealed = client.outputs(DEPS, reveal_sensitive=True)["rds_password"].value

    assert (hidden, revealed) == (None, "rds_password-value")


def test_ca_bundle_keeps_public_roots_and_adds_the_local_ca(ca: CaFiles, tmp_path: Path) -> None:
    """NFR12: Go tools given SSL_CERT_FILE trust both the public roots and the fake's throwaway CA, against the local Terraform Cloud fake's CA."""
    public_roots = Path(certifi.where()).read_text(encoding="utf-8")

    bundle = write_ca_bundle(ca, tmp_path / "bundle.pem").read_text(encoding="utf-8")

    assert bundle.startswith(public_roots.rstrip("\n"))
    assert bundle.rstrip("\n").endswith(ca.ca.read_text(encoding="utf-8").rstrip("\n"))


# --- outputs still being processed (issue 10 item 15) ---------------------------------------

def _patient_client(fake: TfcFake, ca: CaFiles, processing_timeout: float) -> TfcClient:
    return TfcClient(TOKEN, fake.organization, base_url=fake.url, verify=ca.ca, timeout=5,
                     processing_timeout=processing_timeout, processing_interval=0.05)


def test_outputs_wait_out_503_while_terraform_cloud_processes_them(fake: TfcFake, ca: CaFiles) -> None:
    """FR16, issue 10 item 15: current-state-version-outputs answering 503 ("retry the request") twice
    is retried until the outputs come, against the local Terraform Cloud fake in its 503 mode."""
    _seed(fake, NETWORK)
    fake.outputs_still_processing(NETWORK, reads=2)

    outputs = _patient_client(fake, ca, processing_timeout=10).outputs(NETWORK)

    assert set(outputs) == set(NETWORK_OUTPUTS)


def test_outputs_503_beyond_the_bounded_wait_fails_saying_so(fake: TfcFake, ca: CaFiles) -> None:
    """FR16, issue 10 item 15: a 503 that outlasts the bounded wait ends in TfcError naming the 503,
    not in an endless loop, against the local Terraform Cloud fake in its 503 mode."""
    _seed(fake, NETWORK)
    fake.outputs_still_processing(NETWORK, reads=10**6)

    with pytest.raises(TfcError) as err:
        _patient_client(fake, ca, processing_timeout=0.3).outputs(NETWORK)

    assert "503" in err.value.found and "within 0.3s" in err.value.expected
