"""Every module argument is an input of the module at the version Terraform would resolve (static).

Where LFK8S_MODULE_MIRROR holds clones, the inputs are read from the module's own variables at the
newest tag its constraint admits; elsewhere (CI) from the input lists in tests/data/reference, read
from the same tags. A whole plan (test_plan_*.py) proves the same and more where the sources exist.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from lfharness.core import hcl, tf
from lfharness.stack import workspaces
from lfharness.testing import registry

pytestmark = pytest.mark.static

META = {"source", "version", "providers", "depends_on", "count", "for_each"}
REFERENCE = Path(__file__).resolve().parents[1] / "data" / "reference"


def _calls() -> list[tuple[str, str, dict]]:
    return [(ws, name, body) for ws in workspaces.ORDER for name, body in hcl.blocks(tf.TERRAFORM_DIR / ws, "module").items()]


class Inputs:
    """Input names of a module (or one of its subfolders): from the mirror, else tests/data/reference."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.mirror = registry.ModuleMirror.from_env()

    def of(self, source: str, constraint: str, sub: str = "") -> tuple[set[str], str]:
        ref = registry.ModuleRef.from_source(source)
        if self.mirror is not None and self.mirror.git_dir(ref) is not None:
            version = max((v for v in self.mirror.versions(ref) if hcl.admits(constraint, v)),
                          key=lambda v: tuple(int(p) for p in v.split(".")))
            folder = self.tmp / ref.name / version
            if not folder.exists():
                with tarfile.open(fileobj=io.BytesIO(self.mirror.archive(ref, version).read_bytes())) as tar:
                    tar.extractall(folder, filter="data")
            return set(hcl.blocks(folder / sub if sub else folder, "variable")), f"{version} (mirror)"
        name = ref.name + (f"-{Path(sub).name}" if sub else "")
        path = REFERENCE / f"module-inputs-{name}.json"
        if not path.exists():
            # The input lists are committed: a module call without one is a gap in the test data,
            # not an environment that lacks something, so it fails instead of passing unchecked.
            pytest.fail(f"no sources for {source}//{sub}: set {registry.MIRROR_ENV} to clones of the module "
                        f"repositories, or add {path.name} to {REFERENCE} (its README says how)")
        data = json.loads(path.read_text())
        return set(data["inputs"]), f"{data['tag']} (tests/data/reference)"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Inputs:
    return Inputs(tmp_path_factory.mktemp("modules"))


@pytest.mark.parametrize("workspace,name,body", _calls(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_module_argument_is_an_input_at_the_resolved_version(inputs, workspace, name, body):
    """NFR9, decision 6: arguments are the module's own inputs at the pinned version, not guesses."""
    source, _, sub = body["source"].partition("//")
    names, version = inputs.of(source, body["version"], sub)
    unknown = set(body) - META - names
    assert not unknown, f"{workspace} module {name}: {sorted(unknown)} are not inputs of {body['source']} {version}"


def test_node_group_settings_are_inputs_of_the_managed_node_group_submodule(inputs):
    """FR2: keys of eks_managed_node_groups exist in eks//modules/eks-managed-node-group."""
    eks = hcl.blocks(tf.TERRAFORM_DIR / "01-network", "module")["eks"]
    names, version = inputs.of(eks["source"], eks["version"], "modules/eks-managed-node-group")
    for group, settings in eks["eks_managed_node_groups"].items():
        assert not set(settings) - names, f"node group {group}: {sorted(set(settings) - names)} unknown in {version}"
