"""The chart-tree command: the pinned chart assembled from git clones with each dependency at the
version its parent pins (NFR10, decision 16: the chart tier offline, nothing fetched).

Stand-in: small git repositories made here (a "langfuse-k8s" with charts/<name>, a "bitnami"
with bitnami/<name>), holding tiny charts at two commits each, so that picking the right commit
matters; the real helm renders and checks the result.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lfharness.core import tf
from lfharness.testing import charttree
from lfharness.testing.chartrig import source

pytestmark = pytest.mark.static

PIN = source.ReleasePin(release="rel", repository="", chart="top", version="9.9.9", namespace="ns")
GIT_TIMEOUT = 30


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid",
                    "-c", "commit.gpgsign=false", *args], check=True, capture_output=True, timeout=GIT_TIMEOUT)


def _write_chart(folder: Path, name: str, version: str, deps: dict[str, str] | None = None,
                 lock: dict[str, str] | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    meta = {"apiVersion": "v2", "name": name, "version": version, "type": "library" if name == "common" else
            "application"}
    if deps:
        meta["dependencies"] = [{"name": n, "version": v, "repository": "oci://example.invalid/charts"}
                                for n, v in deps.items()]
    (folder / "Chart.yaml").write_text(yaml.safe_dump(meta))
    if lock:
        (folder / "Chart.lock").write_text(yaml.safe_dump({"dependencies": [
            {"name": n, "version": v, "repository": "oci://example.invalid/charts"} for n, v in lock.items()]}))
    elif (folder / "Chart.lock").exists():
        (folder / "Chart.lock").unlink()
    (folder / "templates").mkdir(exist_ok=True)
    if name == "common":
        (folder / "templates" / "_names.tpl").write_text(f'{{{{- define "common.v" -}}}}{version}{{{{- end -}}}}\n')
    else:
        (folder / "templates" / "cm.yaml").write_text(
            f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}-{{{{ .Release.Name }}}}\n"
            f"data:\n  version: \"{version}\"\n")


def _commit(repo: Path, message: str) -> None:
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message)


@pytest.fixture
def repos(tmp_path: Path) -> tuple[Path, Path]:
    """Two clones. bitnami: commit 1 has db 1.0.0 (lock: common 1.9.0) and common 1.9.0; commit 2
    (HEAD) has db 1.1.0 (lock: common 2.0.0) and common 2.0.0. The top chart pins db 1.0.0 and
    common 2.0.0, so a HEAD-only or tag-only lookup gets one of them wrong."""
    top, deps = tmp_path / "langfuse-k8s", tmp_path / "bitnami"
    for repo in (top, deps):
        repo.mkdir()
        _git(repo, "init", "-q")
    _write_chart(deps / "bitnami" / "db", "db", "1.0.0", {"common": "1.x.x"}, {"common": "1.9.0"})
    _write_chart(deps / "bitnami" / "common", "common", "1.9.0")
    _commit(deps, "db 1.0.0, common 1.9.0")
    _write_chart(deps / "bitnami" / "db", "db", "1.1.0", {"common": "2.x.x"}, {"common": "2.0.0"})
    _write_chart(deps / "bitnami" / "common", "common", "2.0.0")
    _commit(deps, "db 1.1.0, common 2.0.0")
    _write_chart(top / "charts" / "top", "top", "9.9.8", {"db": "1.1.0", "common": "2.0.0"})
    _commit(top, "top 9.9.8")
    _write_chart(top / "charts" / "top", "top", "9.9.9", {"db": "1.0.0", "common": "2.0.0"})
    _commit(top, "top 9.9.9")
    _write_chart(top / "charts" / "top", "top", "10.0.0", {"db": "1.1.0", "common": "2.0.0"})
    _commit(top, "top 10.0.0")
    return top, deps


def _sources(top: Path, deps: Path) -> tuple[charttree.Source, list[charttree.Source]]:
    return (charttree.Source("langfuse-k8s", charttree.git_dir(top), charttree.TOP_LAYOUT),
            [charttree.Source("bitnami", charttree.git_dir(deps), charttree.DEPENDENCY_LAYOUT)])


def _version(chart_dir: Path) -> str:
    return str(yaml.safe_load((chart_dir / "Chart.yaml").read_text())["version"])


def test_each_dependency_is_at_the_version_its_parent_pins(repos, tmp_path):
    """NFR10: top 9.9.9 (not HEAD's 10.0.0) with db 1.0.0 from an older commit, db's own
    charts/common at the 1.9.0 its Chart.lock pins, and the top's common at 2.0.0."""
    top, deps = repos
    out = charttree.build(PIN, *_sources(top, deps), tmp_path / "tree" / "top", check=False)
    assert (_version(out), _version(out / "charts" / "db"), _version(out / "charts" / "db" / "charts" / "common"),
            _version(out / "charts" / "common")) == ("9.9.9", "1.0.0", "1.9.0", "2.0.0")


def test_a_release_tag_is_used_when_it_carries_the_version(repos):
    """A tag named like the monorepos' (db/1.1.0) is taken; a tag whose Chart.yaml has another
    version is not trusted, and the history is searched instead."""
    _top, deps = repos
    _git(deps, "tag", "db/1.1.0")
    _git(deps, "tag", "db/1.0.0")  # points at HEAD, which holds db 1.1.0: a wrong tag
    source = _sources(_top, deps)[1][0]
    head = subprocess.run(["git", "-C", str(deps), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True, timeout=GIT_TIMEOUT).stdout.strip()
    tagged, older = charttree.find_commit(source, "db", "1.1.0"), charttree.find_commit(source, "db", "1.0.0")
    assert tagged == (head, "tag db/1.1.0")
    assert older is not None and older[0] != head and "no release tag" in older[1]


def test_a_missing_version_is_named_and_nothing_is_written(repos, tmp_path):
    """Bad input gets a clear error before anything is created: db 3.0.0 exists at no commit."""
    top, deps = repos
    _write_chart(top / "charts" / "top", "top", "9.9.9", {"db": "3.0.0", "common": "2.0.0"})
    _commit(top, "top 9.9.9 again, with a db no commit has")
    out = tmp_path / "tree" / "top"
    with pytest.raises(charttree.ChartTreeError, match=r"charts/db 3\.0\.0: no tag or commit has it \(bitnami/db/"
                                                       r"Chart\.yaml in bitnami"):
        charttree.build(PIN, *_sources(top, deps), out, check=False)
    assert not out.parent.exists()


def test_a_range_without_a_lock_entry_is_an_error(repos, tmp_path):
    """A dependency declared as a range with no Chart.lock cannot be pinned; it is named, not guessed."""
    top, deps = repos
    _write_chart(deps / "bitnami" / "db", "db", "1.2.0", {"common": "2.x.x"})
    _commit(deps, "db 1.2.0 without a Chart.lock")
    _write_chart(top / "charts" / "top", "top", "9.9.9", {"db": "1.2.0", "common": "2.0.0"})
    _commit(top, "top 9.9.9 on db 1.2.0")
    with pytest.raises(charttree.ChartTreeError, match=r"charts/db: dependency common is the range '2\.x\.x'"):
        charttree.build(PIN, *_sources(top, deps), tmp_path / "out", check=False)


def test_an_existing_tree_is_replaced_only_when_asked(repos, tmp_path):
    """A rebuild never silently deletes a folder: --replace is required over a non-empty --out."""
    top, deps = repos
    out = tmp_path / "top"
    out.mkdir()
    (out / "keep").write_text("mine")
    with pytest.raises(charttree.ChartTreeError, match="pass --replace"):
        charttree.build(PIN, *_sources(top, deps), out, check=False)
    assert (out / "keep").read_text() == "mine"
    charttree.build(PIN, *_sources(top, deps), out, replace=True, check=False)
    assert not (out / "keep").exists() and _version(out) == "9.9.9"


def test_a_bare_git_directory_works_like_a_clone(repos, tmp_path):
    """The project's mirror holds bare git directories; a clone's work tree is accepted too."""
    top, deps = repos
    bare = tmp_path / "bitnami.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(deps), str(bare)], check=True, timeout=GIT_TIMEOUT)
    assert charttree.git_dir(bare) == bare.resolve() and charttree.git_dir(deps) == (deps / ".git").resolve()
    out = charttree.build(PIN, *_sources(top, bare), tmp_path / "top", check=False)
    assert _version(out / "charts" / "db") == "1.0.0"


def test_the_checked_tree_passes_the_chart_tiers_check_and_renders(repos, tmp_path):
    """NFR10: with the checks on, the result passes verify_chart_dir, helm dependency list and a
    helm template that renders both application charts."""
    top, deps = repos
    out = charttree.build(PIN, *_sources(top, deps), tmp_path / "top")
    assert source.verify_chart_dir(out, PIN, "test").version == "9.9.9"
    assert charttree.render_check(out, PIN.release, PIN.namespace) == 2


def test_the_dependency_check_names_a_subchart_that_lacks_its_common(repos, tmp_path):
    """The helm dependency check sees what a half-copied tree lacks (here db's own charts/common)."""
    top, deps = repos
    out = charttree.build(PIN, *_sources(top, deps), tmp_path / "top", check=False)
    assert charttree.dependency_problems(out) == []
    shutil.rmtree(out / "charts" / "db" / "charts" / "common")
    assert any("dependency common 1.x.x is 'missing'" in p for p in charttree.dependency_problems(out))


def _run_command(top: Path, deps: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lfharness", "charttree", "--langfuse-k8s", str(top),
                           "--bitnami", str(deps), "--out", str(out)], capture_output=True, text=True,
                          timeout=120, cwd=tf.REPO_ROOT, env=dict(os.environ), check=False)


def test_the_command_pins_the_top_chart_from_helm_tf_and_prints_the_chart_dir(repos, tmp_path):
    """NFR10: `python -m lfharness charttree` builds the chart and version helm.tf pins and ends with
    the LFK8S_CHART_DIR line to use."""
    top, deps = repos
    pin = source.release_pin()
    _write_chart(top / "charts" / pin.chart, pin.chart, pin.version, {"db": "1.0.0"})
    _commit(top, "the pinned chart")
    out = tmp_path / "tree" / pin.chart
    proc = _run_command(top, deps, out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == f"export {source.CHART_DIR_ENV}={out}"
    assert _version(out) == pin.version and "[" in proc.stderr and "s] " in proc.stderr


def test_the_command_exits_2_naming_the_missing_chart_and_writes_nothing(repos, tmp_path):
    """Bad input gets a clear error before anything is created: the pinned chart asks for db 7.7.7,
    which no commit of the bitnami clone has; exit 2, no traceback, no --out."""
    top, deps = repos
    pin = source.release_pin()
    _write_chart(top / "charts" / pin.chart, pin.chart, pin.version, {"db": "7.7.7"})
    _commit(top, "the pinned chart on a db that does not exist")
    out = tmp_path / "tree" / pin.chart
    proc = _run_command(top, deps, out)
    assert proc.returncode == 2 and "charts/db 7.7.7: no tag or commit has it" in proc.stderr
    assert "Traceback" not in proc.stderr and not out.parent.exists()
