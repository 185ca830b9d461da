"""The workspace registry (lfharness/stack/workspaces.py) is the one model of the three
workspaces: it must say what the HCL says (folders, cloud block names, `tfe_outputs` sources,
outputs), and every order and graph the harness uses comes from it. Static: HCL read with
python-hcl2, no Terraform run."""

from __future__ import annotations

import pytest

from lfharness.core import hcl, tf
from lfharness.stack import budget, cost, pause, workspaces
from lfharness.stack.workspaces import REGISTRY, Workspace

pytestmark = pytest.mark.static


def _cloud_name(folder: str) -> str:
    for path in sorted((tf.TERRAFORM_DIR / folder).glob("*.tf")):
        for block in hcl.load(path).get("terraform", []):
            for cloud in block.get("cloud", []):
                return cloud["workspaces"][0]["name"]
    raise AssertionError(f"{folder} has no cloud block")


def _tfe_sources(folder: str) -> set[str]:
    # Each `data` or `ephemeral` block separately: hcl.blocks merges by type, so two tfe_outputs
    # would hide one. The ephemeral tfe_outputs (03-app's secrets, issue 26) needs state sharing too.
    return {body["workspace"] for path in sorted((tf.TERRAFORM_DIR / folder).glob("*.tf"))
            for kind in ("data", "ephemeral")
            for block in hcl.load(path).get(kind, []) for body in block.get("tfe_outputs", {}).values()}


def _outputs(folder: str) -> dict[str, bool]:
    return {name: bool(body.get("sensitive")) for name, body in hcl.blocks(tf.TERRAFORM_DIR / folder, "output").items()}


def test_every_workspace_folder_is_a_registry_entry_and_back():
    """Issue 22: the folders under terraform/ and the registry's entries are the same set."""
    folders = {p.name for p in tf.TERRAFORM_DIR.iterdir() if p.is_dir() and any(p.glob("*.tf"))}
    assert folders == {w.folder for w in REGISTRY}


@pytest.mark.parametrize("entry", REGISTRY, ids=lambda w: w.folder)
def test_the_registry_names_the_workspace_its_cloud_block_names(entry: Workspace):
    """FR16, NFR12: each entry's Terraform Cloud name is its cloud block's workspace name."""
    assert entry.tfc_name == _cloud_name(entry.folder)


@pytest.mark.parametrize("entry", REGISTRY, ids=lambda w: w.folder)
def test_the_registry_upstream_is_what_the_workspace_reads_through_tfe_outputs(entry: Workspace):
    """FR16, FR17: an entry's upstream workspaces are exactly its `tfe_outputs` sources, so state
    sharing (state_readers) gives each workspace the reads it makes and no others."""
    assert {workspaces.get(u).tfc_name for u in entry.upstream} == _tfe_sources(entry.folder)


@pytest.mark.parametrize("entry", REGISTRY, ids=lambda w: w.folder)
def test_the_cluster_side_output_and_the_samples_are_outputs_of_the_workspace(entry: Workspace):
    """The output that marks an applied cluster side, and every sample output the offline tiers
    serve (with its sensitivity), are outputs the workspace declares."""
    declared = _outputs(entry.folder)
    samples = {**entry.sample_outputs, **entry.paused_outputs}
    assert entry.cluster_side_output in declared
    assert {k: s for k, (_, s) in samples.items()} == {k: declared[k] for k in samples}


def test_a_workspace_read_by_another_serves_every_output_offline():
    """The offline tiers serve every output a downstream workspace may read."""
    read = {u for w in REGISTRY for u in w.upstream}
    assert {f: sorted(workspaces.get(f).sample_outputs) for f in read} == {f: sorted(_outputs(f)) for f in read}


def test_orders_are_derived_from_the_upstream_graph():
    """FR27: deploy and resume follow the upstream graph; pause and teardown run it backwards."""
    position = {f: i for i, f in enumerate(workspaces.ORDER)}
    assert all(position[u] < position[w.folder] for w in REGISTRY for u in w.upstream)
    assert (pause.RESUME_ORDER, pause.PAUSE_ORDER) == (workspaces.ORDER, tuple(reversed(workspaces.ORDER)))
    assert list(budget.APPLY) == list(workspaces.ORDER) and all(set(v) == set(workspaces.ORDER)
                                                                for v in cost.VARIANTS.values())


def test_state_is_shared_with_exactly_the_workspaces_that_read_it():
    """FR16, FR17: each state's readers are the workspaces that name it upstream."""
    readers = workspaces.state_readers()
    assert {name: sorted(r) for name, r in readers.items()} == {
        w.tfc_name: sorted(r.tfc_name for r in REGISTRY if w.folder in r.upstream) for w in REGISTRY}


@pytest.mark.parametrize(("entries", "message"), [
    ((Workspace("a", "ws-a", ("b",), "x", 1), Workspace("b", "ws-b", ("a",), "y", 1)), "its own upstream"),
    ((Workspace("a", "ws-a", ("zz",), "x", 1),), "names upstream 'zz'"),
], ids=["cycle", "unknown upstream"])
def test_a_registry_with_a_circle_or_an_unknown_upstream_is_refused_by_name(entries, message):
    """A broken registry entry is named when the order is derived, not found later mid-apply."""
    with pytest.raises(ValueError, match=message):
        workspaces._apply_order(entries)
