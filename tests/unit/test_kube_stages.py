"""The kube tier's kwok stages against their expected files (static tier), in the manner of kwok's
own kustomize/stage tests: each stage under lfharness/testing/cluster/stages/ rendered (parsed,
its ${NAME} placeholders filled from lfharness/testing/cluster/kwok.py) equals its committed
stages/testdata/<name>.output.yaml, and a changed, missing or extra stage is caught.

Nothing runs kwok here: what the stages do to real pods is the kube tier's business
(test_kube_k8s.py); these tests hold the stages still between reviews.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from lfharness.testing.cluster import kwok

pytestmark = pytest.mark.static

REFRESH = "python -m lfharness.testing.cluster golden"
STAGE_FILES = kwok.stage_files()


def _copy(tmp_path: Path) -> tuple[Path, Path]:
    stages = tmp_path / "stages"
    shutil.copytree(kwok.STAGES_DIR, stages)
    return stages, stages / "testdata"


@pytest.mark.parametrize("path", STAGE_FILES, ids=[p.stem for p in STAGE_FILES])
def test_each_stage_renders_as_its_expected_file(path):
    """kwok's stage test pattern: input (the stage) rendered == output (its expected file)."""
    expected = kwok.GOLDEN_DIR / f"{path.stem}{kwok.GOLDEN_SUFFIX}"
    assert expected.is_file(), f"no expected file for {path.name}; write it with `{REFRESH}`"
    differences = kwok.golden_differences()
    assert path.stem not in differences, (f"{path.name} no longer renders as {expected.name} "
                                          f"(if meant: `{REFRESH}`):\n{differences[path.stem]}")


def test_every_expected_file_has_its_stage_and_the_order_is_the_listed_one():
    """No expected file outlives its stage, and kwok gets the stages in kustomization.yaml's order."""
    assert kwok.golden_differences() == {}
    assert [s["metadata"]["name"] for s in kwok.stages()] == [p.stem for p in STAGE_FILES] == [
        "node-initialize", "node-heartbeat-with-lease", "pod-ready", "pod-complete", "pod-fail",
        "container-restart", "pod-delete"]


def test_a_changed_stage_is_detected_with_a_diff(tmp_path):
    """The check can fail: pod-ready's delay changed from 200 to 300 ms is named, with a diff
    showing both values, and the other stages still match."""
    stages, golden = _copy(tmp_path)
    path = stages / "pod-ready.yaml"
    text = path.read_text()
    assert text.count("durationMilliseconds: 200") == 1
    path.write_text(text.replace("durationMilliseconds: 200", "durationMilliseconds: 300"))
    differences = kwok.golden_differences(stages, golden)
    assert list(differences) == ["pod-ready"]
    assert "-    durationMilliseconds: 200" in differences["pod-ready"]
    assert "+    durationMilliseconds: 300" in differences["pod-ready"]


def test_a_changed_template_line_is_detected(tmp_path):
    """The check reads the status templates too: the failing Job's exit code changed is named."""
    stages, golden = _copy(tmp_path)
    path = stages / "pod-fail.yaml"
    path.write_text(path.read_text().replace("exitCode: 1, reason: Error", "exitCode: 2, reason: Error"))
    assert list(kwok.golden_differences(stages, golden)) == ["pod-fail"]


def test_a_layout_only_change_is_not_a_difference(tmp_path):
    """Compared as data: the same stage written in another YAML layout still matches."""
    stages, golden = _copy(tmp_path)
    path = stages / "pod-delete.yaml"
    path.write_text(yaml.safe_dump(yaml.safe_load(path.read_text()), default_flow_style=True))
    assert kwok.golden_differences(stages, golden) == {}


def test_a_missing_and_an_orphan_expected_file_are_named(tmp_path):
    """A stage without expected file, and an expected file whose stage is no longer listed."""
    stages, golden = _copy(tmp_path)
    (golden / f"pod-delete{kwok.GOLDEN_SUFFIX}").unlink()
    shutil.copy(golden / f"pod-ready{kwok.GOLDEN_SUFFIX}", golden / f"pod-gone{kwok.GOLDEN_SUFFIX}")
    differences = kwok.golden_differences(stages, golden)
    assert sorted(differences) == ["pod-delete", "pod-gone"]
    assert "no expected file" in differences["pod-delete"]
    assert "does not list" in differences["pod-gone"]


def test_placeholders_are_filled_from_the_constants_the_tests_use():
    """The annotation and script ending tests use (kwok.RESTART_ANNOTATION, kwok.FAILING_SCRIPT_SUFFIX)
    are the ones the stages select on; no ${...} is left for kwok."""
    by_name = {s["metadata"]["name"]: s for s in kwok.stages()}
    keys = {name: [e["key"] for e in s["spec"]["selector"]["matchExpressions"]] for name, s in by_name.items()}
    assert f'.metadata.annotations["{kwok.RESTART_ANNOTATION}"]' in keys["container-restart"]
    assert any(f'endswith("{kwok.FAILING_SCRIPT_SUFFIX}")' in k for k in keys["pod-fail"])
    assert any(f'endswith("{kwok.FAILING_SCRIPT_SUFFIX}")' in k for k in keys["pod-complete"])
    assert "${" not in yaml.safe_dump_all(list(by_name.values()))


def test_an_unknown_placeholder_is_an_error_naming_the_file(tmp_path):
    """A misspelt ${NAME} fails the load with the file's name instead of reaching kwok verbatim."""
    stages, _ = _copy(tmp_path)
    path = stages / "container-restart.yaml"
    path.write_text(path.read_text().replace("${RESTART_ANNOTATION}", "${RESTART_ANOTATION}"))
    with pytest.raises(kwok.StageError, match=r"container-restart\.yaml: unknown placeholder \$\{RESTART_ANOTATION\}"):
        kwok.stages(stages)


def test_the_refresh_rewrites_the_expected_files_it_compares_against(tmp_path):
    """`python -m lfharness.testing.cluster golden`'s function: after a deliberate change, the
    rewritten expected files match again."""
    stages, golden = _copy(tmp_path)
    path = stages / "pod-ready.yaml"
    path.write_text(path.read_text().replace("durationMilliseconds: 200", "durationMilliseconds: 300"))
    written = kwok.write_golden(stages, golden)
    assert len(written) == len(STAGE_FILES) and kwok.golden_differences(stages, golden) == {}
