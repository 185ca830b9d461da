"""Assemble the pinned Langfuse chart with its dependencies from git clones, for the chart tier offline.

    python -m lfharness charttree --langfuse-k8s <clone> --bitnami <clone> --out <dir>

The top chart and its version come from terraform/03-app/helm.tf (the one pin). Every
dependency is taken at the version its parent pins: the parent's Chart.lock when it has one
(what `helm dependency build` would install), else the exact version in its Chart.yaml. Each
dependency is looked up by name in the git history of the dependency sources and unpacked under
its parent's `charts/<name>`, recursively, so subcharts carry the `common` they pin. The whole
tree is resolved before anything is written; a missing chart or version is an error naming it.
The result is checked the way the chart tier checks a chart (lfharness.testing.chartrig.source.verify_chart_dir),
with `helm dependency list` on every chart in it and with a `helm template` render, then moved
into place. Nothing here fetches anything, and the tree never belongs in the repository.
"""

from __future__ import annotations

import argparse
import logging
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from lfharness.core.wait import Stopwatch
from lfharness.testing.chartrig import source as chart

LOG = logging.getLogger("lfharness.testing.charttree")

GIT_TIMEOUT = 300.0
HELM_TIMEOUT = 120.0
TOP_LAYOUT = "charts/{name}"
DEPENDENCY_LAYOUT = "bitnami/{name}"
# Tag names chart monorepos use for a chart release: langfuse-k8s "langfuse-1.5.19",
# bitnami/charts "postgresql/16.4.9".
TAG_PATTERNS = ("{name}-{version}", "{name}/{version}")
# `helm dependency list` statuses of a dependency that is present at an acceptable version.
GOOD_STATUSES = {"ok", "unpacked"}
_EXACT = re.compile(r"v?\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?")


class ChartTreeError(RuntimeError):
    """The tree cannot be assembled or failed its checks; the message names what and where."""


@dataclass(frozen=True)
class Source:
    """A git repository holding charts at `layout` (e.g. bitnami/{name})."""

    label: str
    git_dir: Path
    layout: str

    def chart_path(self, name: str) -> str:
        return self.layout.format(name=name)


@dataclass
class Node:
    """One chart of the tree: where it comes from and where it goes (relative to the top chart)."""

    name: str
    version: str
    source: Source
    commit: str
    how: str
    dest: Path
    children: list[Node] = field(default_factory=list)

    def walk(self) -> list[Node]:
        return [self, *(n for child in self.children for n in child.walk())]


def git_dir(path: Path) -> Path:
    """The git directory of a clone (its .git) or of a bare/mirror repository (itself)."""
    path = path.expanduser().resolve()
    if (path / ".git").is_dir():
        return path / ".git"
    if (path / "HEAD").is_file() and (path / "objects").is_dir():
        return path
    raise ChartTreeError(f"{path} is neither a git clone nor a git directory (no .git, no HEAD + objects)")


def _git(source: Source, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["git", "--git-dir", str(source.git_dir), *args], capture_output=True, text=True,
                          timeout=GIT_TIMEOUT, check=False)
    if check and proc.returncode != 0:
        raise ChartTreeError(f"git {' '.join(args)} in {source.git_dir} exited {proc.returncode}: "
                             f"{proc.stderr.strip()[-1000:]}")
    return proc


def _show(source: Source, commit: str, path: str) -> str | None:
    proc = _git(source, "show", f"{commit}:{path}", check=False)
    return proc.stdout if proc.returncode == 0 else None


def _meta(text: str | None) -> dict:
    if text is None:
        return {}
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _is(meta: dict, name: str, version: str) -> bool:
    return meta.get("name") == name and str(meta.get("version")) == version


def _batch_chart_yamls(source: Source, specs: list[str]) -> list[str | None]:
    """Contents of many `<commit>:<path>` blobs in one `git cat-file --batch` (None where absent)."""
    proc = subprocess.run(["git", "--git-dir", str(source.git_dir), "cat-file", "--batch"],
                          input="".join(f"{s}\n" for s in specs).encode(), capture_output=True,
                          timeout=GIT_TIMEOUT, check=False)
    if proc.returncode != 0:
        raise ChartTreeError(f"git cat-file --batch in {source.git_dir} exited {proc.returncode}: "
                             f"{proc.stderr.decode(errors='replace').strip()[-1000:]}")
    out, pos, found = proc.stdout, 0, []
    for _ in specs:
        end = out.index(b"\n", pos)
        header = out[pos:end].split()
        pos = end + 1
        if len(header) == 3:
            size = int(header[2])
            found.append(out[pos:pos + size].decode(errors="replace"))
            pos += size + 1
        else:
            found.append(None)
    return found


def find_commit(source: Source, name: str, version: str) -> tuple[str, str] | None:
    """(commit, how) of `source` whose <layout>/Chart.yaml is chart `name` at `version`, or None.

    A release tag is tried first; without one, the newest commit in the chart folder's history
    whose Chart.yaml has that version (its final state at that version).
    """
    path = source.chart_path(name)
    for pattern in TAG_PATTERNS:
        tag = pattern.format(name=name, version=version)
        proc = _git(source, "rev-parse", "--verify", "--quiet", f"refs/tags/{tag}^{{commit}}", check=False)
        if proc.returncode == 0:
            commit = proc.stdout.strip()
            if _is(_meta(_show(source, commit, f"{path}/Chart.yaml")), name, version):
                return commit, f"tag {tag}"
    log = _git(source, "log", "--all", "--format=%H", "--", f"{path}/Chart.yaml", check=False)
    commits = log.stdout.split() if log.returncode == 0 else []
    for commit, text in zip(commits, _batch_chart_yamls(source, [f"{c}:{path}/Chart.yaml" for c in commits]),
                            strict=True):
        if _is(_meta(text), name, version):
            return commit, f"commit {commit[:12]} (no release tag)"
    return None


def pinned_dependencies(chart_yaml: dict, chart_lock: dict | None, where: str) -> tuple[list[tuple[str, str]], list[str]]:
    """(name, version) of every dependency as pinned, and the problems found.

    Chart.lock wins (it is what the chart was packaged with); a range in Chart.yaml without a
    lock entry cannot be pinned and is a problem, not a guess.
    """
    locked = {d.get("name"): str(d.get("version")) for d in (chart_lock or {}).get("dependencies") or []}
    pins, problems = [], []
    for dep in chart_yaml.get("dependencies") or []:
        name, declared = dep.get("name"), str(dep.get("version", ""))
        if not name:
            problems.append(f"{where}: a dependency without a name in Chart.yaml")
        elif name in locked:
            pins.append((name, locked[name]))
        elif _EXACT.fullmatch(declared):
            pins.append((name, declared))
        else:
            problems.append(f"{where}: dependency {name} is the range {declared!r} in Chart.yaml and "
                            "Chart.lock pins no version of it")
    return pins, problems


def resolve(name: str, version: str, sources: Sequence[Source], dependency_sources: Sequence[Source],
            dest: Path, problems: list[str], started: float) -> Node | None:
    """The tree below chart `name` `version`: the chart searched in `sources`, its dependencies (at
    any depth) in `dependency_sources`, each in order. What cannot be found is appended to
    `problems`: the whole tree is searched, so every missing piece is named at once."""
    where = name if dest == Path(".") else str(dest)
    for source in sources:
        found = find_commit(source, name, version)
        if found is not None:
            break
    else:
        searched = ", ".join(f"{s.chart_path(name)}/Chart.yaml in {s.label} ({s.git_dir})" for s in sources)
        problems.append(f"{where} {version}: no tag or commit has it ({searched})")
        return None
    commit, how = found
    path = source.chart_path(name)
    LOG.info("[%5.1fs] %s %s: %s of %s", time.monotonic() - started, where, version, how, source.label)
    node = Node(name=name, version=version, source=source, commit=commit, how=how, dest=dest)
    lock_text = _show(source, commit, f"{path}/Chart.lock")
    pins, found_problems = pinned_dependencies(_meta(_show(source, commit, f"{path}/Chart.yaml")),
                                               _meta(lock_text) if lock_text is not None else None, where)
    problems.extend(found_problems)
    for dep_name, dep_version in pins:
        child = resolve(dep_name, dep_version, dependency_sources, dependency_sources,
                        dest / "charts" / dep_name, problems, started)
        if child is not None:
            node.children.append(child)
    return node


def _unpack(node: Node, root: Path) -> int:
    """`git archive` of the node's chart folder unpacked at root/dest; returns the file count."""
    prefix = node.source.chart_path(node.name).rstrip("/") + "/"
    target = root / node.dest
    if target.exists():
        # A chart that ships its own charts/<dep> would leave helm two copies; the pinned one wins.
        LOG.info("replacing %s shipped inside its parent with the pinned %s", node.dest, node.version)
        shutil.rmtree(target)
    target.mkdir(parents=True)
    proc = subprocess.Popen(["git", "--git-dir", str(node.source.git_dir), "archive", "--format=tar",
                             node.commit, prefix], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    count = 0
    try:
        assert proc.stdout is not None
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for member in tar:
                if not member.name.startswith(prefix) or member.name == prefix:
                    continue
                member.name = member.name[len(prefix):]
                tar.extract(member, target, filter="data")
                count += member.isfile()
    finally:
        stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        returncode = proc.wait(timeout=GIT_TIMEOUT)
    if returncode != 0:
        raise ChartTreeError(f"git archive {node.commit} {prefix} in {node.source.git_dir} exited "
                             f"{returncode}: {stderr.strip()[-1000:]}")
    return count


def _helm(*args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run([str(chart.helm_bin()), *args], capture_output=True, text=True,
                              timeout=HELM_TIMEOUT, check=False)
    except chart.ChartError as exc:
        raise ChartTreeError(str(exc)) from exc


def dependency_problems(tree: Path) -> list[str]:
    """What `helm dependency list` reports as not in order, for the top chart and every subchart."""
    problems = []
    for chart_yaml in sorted(tree.rglob("Chart.yaml")):
        chart_dir = chart_yaml.parent
        proc = _helm("dependency", "list", str(chart_dir))
        if proc.returncode != 0:
            problems.append(f"helm dependency list {chart_dir} exited {proc.returncode}: {proc.stderr.strip()}")
            continue
        for line in proc.stdout.splitlines()[1:]:
            cells = [c.strip() for c in line.split("\t")]
            if len(cells) >= 4 and cells[0] and cells[-1] not in GOOD_STATUSES:
                problems.append(f"{chart_dir.relative_to(tree.parent)}: dependency {cells[0]} {cells[1]} is "
                                f"{cells[-1]!r}")
    return problems


def render_check(tree: Path, release: str, namespace: str) -> int:
    """`helm template` of the tree with the chart's own lint values when it ships them; the
    number of objects rendered."""
    values = ["-f", str(tree / "values.lint.yaml")] if (tree / "values.lint.yaml").is_file() else []
    proc = _helm("template", release, str(tree), "--namespace", namespace, *values)
    if proc.returncode != 0:
        raise ChartTreeError(f"helm template {release} {tree} exited {proc.returncode}: {proc.stderr.strip()[-3000:]}")
    return sum(1 for doc in yaml.safe_load_all(proc.stdout) if doc)


def build(pin: chart.ReleasePin, top: Source, dependencies: Sequence[Source], out: Path,
          replace: bool = False, check: bool = True) -> Path:
    """Resolve, unpack, check and move into place the tree of chart `pin.chart` `pin.version`; the
    absolute path of the tree. Nothing is written when a chart or version is missing."""
    started = time.monotonic()
    out = out.expanduser().resolve()
    if out.exists() and any(out.iterdir()) and not replace:
        raise ChartTreeError(f"{out} exists and is not empty; pass --replace to rebuild it")
    problems: list[str] = []
    with Stopwatch(f"resolving {pin.chart} {pin.version} and its dependencies", logger=LOG):
        # Dependencies come from the dependency sources; the top source last, for charts beside it.
        root = resolve(pin.chart, pin.version, [top], [*dependencies, top], Path("."), problems, started)
    if root is None or problems:
        raise ChartTreeError("cannot assemble the chart tree, nothing written:\n  " + "\n  ".join(problems))
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        tree = staging / pin.chart
        with Stopwatch(f"unpacking {len(root.walk())} charts into {staging}", logger=LOG):
            for node in root.walk():
                files = _unpack(node, tree)
                LOG.info("[%5.1fs] %s %s: %d files", time.monotonic() - started,
                         pin.chart if node.dest == Path(".") else node.dest, node.version, files)
        if check:
            with Stopwatch("checking the tree as the chart tier does", logger=LOG):
                try:
                    chart.verify_chart_dir(tree, pin, "charttree")
                except chart.ChartError as exc:
                    raise ChartTreeError(str(exc)) from exc
                deps = dependency_problems(tree)
                if deps:
                    raise ChartTreeError("helm dependency list found problems:\n  " + "\n  ".join(deps))
                objects = render_check(tree, pin.release, pin.namespace)
                LOG.info("[%5.1fs] helm template rendered %d objects", time.monotonic() - started, objects)
        if out.exists():
            shutil.rmtree(out)
        tree.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    LOG.info("[%5.1fs] chart tree ready at %s", time.monotonic() - started, out)
    return out


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--langfuse-k8s", type=Path, required=True,
                        help="a clone (or git directory) of langfuse/langfuse-k8s: the top chart, at charts/<name>")
    parser.add_argument("--bitnami", type=Path, required=True,
                        help="a clone (or git directory) of bitnami/charts: the dependencies, at bitnami/<name>")
    parser.add_argument("--out", type=Path, required=True, help="the chart folder to write (then LFK8S_CHART_DIR)")
    parser.add_argument("--replace", action="store_true", help="rebuild --out when it already holds something")
    parser.add_argument("--no-check", action="store_true",
                        help="skip the helm checks (dependency list, template) of the result")
    return parser


def command(args: argparse.Namespace) -> int:
    """The CLI: build, then print the LFK8S_CHART_DIR line (stdout) or the error (stderr, exit 2)."""
    try:
        top = Source("langfuse-k8s", git_dir(args.langfuse_k8s), TOP_LAYOUT)
        deps = Source("bitnami", git_dir(args.bitnami), DEPENDENCY_LAYOUT)
        out = build(chart.release_pin(), top, [deps], args.out, replace=args.replace, check=not args.no_check)
    except ChartTreeError as exc:
        print(f"charttree: {exc}", file=sys.stderr)
        return 2
    print(f"export {chart.CHART_DIR_ENV}={out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = add_arguments(argparse.ArgumentParser(prog="python -m lfharness.testing.charttree",
                                                   description=__doc__.splitlines()[0]))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return command(args)


if __name__ == "__main__":
    sys.exit(main())
