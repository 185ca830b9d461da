"""The workspace registry (lfharness/stack/workspaces.py) is the one model of the three
workspaces: it must say what the HCL says (folders, cloud block names, `tfe_outputs` sources,
outputs), and every order and graph the harness uses comes from it. Static: HCL read with
python-hcl2, no Terraform run."""

from __future__ import annotations

import re

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


def test_the_apply_order_follows_the_upstream_graph_whatever_order_the_entries_are_listed_in():
    """FR27: a workspace listed before what it reads is still applied after it (deploy, resume)."""
    entries = (Workspace("c", "ws-c", ("a", "b"), "z", 1), Workspace("b", "ws-b", ("a",), "y", 1),
               Workspace("a", "ws-a", (), "x", 1))
    assert workspaces._apply_order(entries) == ("a", "b", "c")


def test_an_unknown_upstream_is_refused_with_the_entry_that_names_it():
    """A broken registry entry is named by the entry that holds it, however deep in the graph."""
    entries = (Workspace("c", "ws-c", ("b",), "z", 1), Workspace("b", "ws-b", ("zz",), "y", 1))
    with pytest.raises(ValueError, match=r"^workspace registry: b names upstream 'zz', which is not a registry"):
        workspaces._apply_order(entries)


@pytest.mark.parametrize("hosts", [(), ("a", "b")], ids=["none", "two"])
def test_a_registry_without_exactly_one_cluster_workspace_is_refused_by_name(hosts):
    """The pause, teardown and status steps of the cluster's workspace need exactly one such workspace."""
    entries = tuple(Workspace(f, f"ws-{f}", (), "x", 1, hosts_cluster=f in hosts) for f in ("a", "b", "c"))
    with pytest.raises(ValueError, match=re.escape(f"exactly one workspace must have hosts_cluster, found {list(hosts)}")):
        workspaces._single(entries, "hosts_cluster")


def test_the_one_workspace_with_a_flag_is_found_wherever_it_is_listed():
    """CLUSTER_WORKSPACE, APP_WORKSPACE and DATA_WORKSPACE: the entry carrying the flag, by folder."""
    entries = tuple(Workspace(f, f"ws-{f}", (), "x", 1, in_cluster=f == "b") for f in ("a", "b", "c"))
    assert workspaces._single(entries, "in_cluster") == "b"
    assert (workspaces.CLUSTER_WORKSPACE, workspaces.APP_WORKSPACE, workspaces.DATA_WORKSPACE) == tuple(
        next(w.folder for w in REGISTRY if getattr(w, flag)) for flag in ("hosts_cluster", "in_cluster", "holds_data"))


def test_an_unknown_workspace_folder_is_refused_with_the_known_ones():
    """A typo in a folder name says which folders exist, in apply order."""
    with pytest.raises(KeyError, match="no workspace '04-extra' in the registry; known: " + ", ".join(workspaces.ORDER)):
        workspaces.get("04-extra")
    assert workspaces.get("02-deps") is workspaces.BY_FOLDER["02-deps"]
