"""Mutation score of the operator code (issue 28): do the fast offline tests of each operator module
catch a one-token break of it?

A benchmark, not a test and not part of .ci/run (minutes per module on this 2-core machine):

    .venv/bin/pip install -e '.[mutation]'        # mutmut 3.8.1, the optional "mutation" group
    .venv/bin/python benchmarks/mutation.py                                   # every module below
    .venv/bin/python benchmarks/mutation.py --module lfharness/stack/clickhouse.py
    .venv/bin/python benchmarks/mutation.py --report                           # last runs' table only

Each module runs in its own work folder, .mutmut/<module>/ (git-ignored): links to lfharness/, tests/,
conftest.py and pytest.ini, and a pyproject.toml holding the repository's [tool.mutmut] with
`only_mutate` set to that module and `pytest_add_cli_args_test_selection` to that module's static
tests (MODULES below). mutmut 3 copies it all into .mutmut/<module>/mutants/, runs the selected tests
once to learn which test reaches which function, then, for each mutant, only the tests that reach the
mutated function, with one worker (--max-children 1: the machine is shared). pytest runs there with
the project's pytest.ini (`-p lfharness.core.procs`), conftest.py (lfharness.testing.pytest_redact)
and the unit tier's stand-ins (Debian's redis-server, moto), plus `-m static -p no:cacheprovider`.

Verdicts: "killed" counts mutmut's killed and timeout (the tests noticed: a mutant that never ends
is caught by the time limit); "survived" counts survived, no tests and suspicious; "equivalent" is a
survivor listed in benchmarks/mutation-equivalents/<module key>.txt (mutmut 3 reads no such list, only
`# pragma: no mutate` in the source: this runner reads it). An entry there names the mutant, the
line the mutation produces and the reason; an entry whose line no longer matches the mutant (the
function changed, mutmut renumbered) is reported as stale and its mutant counts as survived.
Score: killed / (mutants - equivalent).

To see a mutant: `cd .mutmut/<module> && ../../.venv/bin/python -m mutmut show <name>`; each run
also writes the survivors' diffs to .mutmut/<module>/survivors.txt.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".mutmut"
# One file a module (<module key>.txt, e.g. stack.clickhouse.txt): people working on different modules
# never edit the same file.
EQUIVALENTS = ROOT / "benchmarks" / "mutation-equivalents"
LINKED = ("lfharness", "tests", "conftest.py", "pytest.ini")
# Repository files some selected tests read (the workflows, the Terraform folders, the docs): linked into
# the mutants' folder itself, which mutmut fills without replacing what is already there.
READ_BY_TESTS = ("terraform", ".github", "docs", "README.md", ".env.example", ".gitignore", "setup.sh", ".ci",
                 "benchmarks")  # not pyproject.toml: mutmut writes its own copy there

# Operator module -> its fast offline tests (static tier: no cloud, no Terraform, local stand-ins).
MODULES: dict[str, tuple[str, ...]] = {
    # status reads the node zones through clickhouse.node_instance_zones (moto's EC2).
    "lfharness/stack/clickhouse.py": ("tests/unit/test_clickhouse_quiesce.py", "tests/unit/test_status.py"),
    "lfharness/stack/status.py": ("tests/unit/test_status.py",),
    # Without the tests that read files of the repository outside lfharness/ and tests/ (.env.example,
    # .gitignore, terraform/): the mutants' folder holds no copy of them.
    "lfharness/core/envfile.py": ("tests/unit/test_envfile.py", "tests/unit/test_envfile_boundaries.py",
                                  "-k", "not env_example and not ignored_by_git and not terraform_validates "
                                  "and not workspace_variable and not region_rule"),
    "lfharness/stack/pause.py": ("tests/unit/test_pause.py", "tests/unit/test_pause_behaviour.py"),
    "lfharness/stack/appkeys.py": ("tests/unit/test_keys.py", "tests/unit/test_appkeys.py"),
    "lfharness/stack/connect.py": ("tests/unit/test_connect.py", "tests/unit/test_connect_behaviour.py"),
    # up: the lifecycle tier applies it for real; these are its static tests with a fake stack.
    "lfharness/stack/deploy.py": ("tests/unit/test_mutation_deploy.py",),
    # The pricing over hand-made plan documents and the committed rate table.
    "lfharness/stack/cost.py": ("tests/unit/test_cost.py", "tests/unit/test_cost_lines.py"),
    # The fast in-process tests of the Redactor; the test_no_secret_* files that run pytest in a
    # child process cost seconds each and report no function hits to mutmut.
    "lfharness/core/redact.py": ("tests/unit/test_no_secret_redact.py", "tests/unit/test_redact_boundaries.py"),
    # run_supervised's tests run small Python children (timeouts of 0.5 s): about 5 s a mutant.
    "lfharness/core/wait.py": ("tests/unit/test_wait.py", "tests/unit/test_wait_supervised.py"),
    # The e2e suite's Langfuse client against the local stand-in (lfharness.testing.langfuse_fake);
    # the SDK tests start the real langfuse SDK in-process (about 2 s each).
    "lfharness/stack/langfuse_api.py": ("tests/unit/test_e2e_langfuse_api.py",
                                        "tests/unit/test_e2e_langfuse_api_clickhouse.py",
                                        "tests/unit/test_langfuse_sdk.py", "tests/unit/test_langfuse_fake_otlp.py",
                                        "tests/unit/test_langfuse_api_behaviour.py"),
    # The Terraform Cloud client against the local Terraform Cloud fake (lfharness.testing.tfc_fake).
    "lfharness/core/tfc.py": ("tests/unit/test_tfc.py", "tests/unit/test_tfc_fake_cloud.py",
                              "tests/unit/test_tfc_client.py"),
    # The runner with a stand-in terraform binary (small scripts), in-process: test_cancellation.py proves
    # the same paths through child pytest sessions (8-11 s a test, and mutmut sees no function it reaches).
    "lfharness/core/tf.py": ("tests/unit/test_tf_runner.py",),
    # How the harness ends: SIGTERM, helpers that die with it, the record of Terraform processes.
    "lfharness/core/procs.py": ("tests/unit/test_interrupts.py", "tests/unit/test_procs.py"),
    # The stack with a fake Terraform runner and the Terraform Cloud fake; the lifecycle tier applies it
    # for real (too slow a mutant).
    # Its static tests with a fake Terraform runner: test_stack_and_k8s, test_teardown_aws_side, test_unlock
    # and test_e2e_teardown run real Terraform (about 6 s a mutant, over 2 hours for the module).
    "lfharness/stack/stack.py": ("tests/unit/test_stack_behaviour.py",),
    # The checks and the teardown's sweep against moto, Debian's PostgreSQL and Redis.
    "lfharness/stack/aws_checks.py": ("tests/unit/test_aws_checks.py", "tests/unit/test_aws_checks_behaviour.py",
                                      "tests/unit/test_teardown_sweep_kinds.py",
                                      "tests/unit/test_aws_checks_connections.py"),
    # The kube tier runs k8s.py against a real kube-apiserver (a cluster a mutant: too slow); these are
    # its static tests with fake clients and a stand-in kubectl.
    "lfharness/stack/k8s.py": ("tests/unit/test_stack_and_k8s.py", "tests/unit/test_e2e_k8s.py",
                               "tests/unit/test_eks_token.py", "tests/unit/test_k8s_behaviour.py"),
    "lfharness/commands.py": ("tests/unit/test_commands.py", "tests/unit/test_status.py", "tests/unit/test_keys.py",
                              "tests/unit/test_unlock.py", "tests/unit/test_teardown_aws_side.py",
                              "tests/unit/test_credentials_lifetime.py", "tests/unit/test_cost.py"),
    # Not lfharness/stack/budget.py: its figures are computed once at import, outside any function,
    # and mutmut 3 mutates only inside functions (its run stops with "no test case for any mutant");
    # test_credentials_lifetime.py checks the figures against the workspaces' budgets and the workflow.
    "lfharness/stack/workspaces.py": ("tests/unit/test_workspaces.py", "tests/unit/test_layout.py"),
}

KILLED = {"killed", "timeout", "caught by type check", "segfault"}
SURVIVED = {"survived", "no tests", "suspicious"}
# A run still going (or stopped) has mutants without a verdict yet: not survivors, and not killed either.
NOT_RUN = {"not checked"}


@dataclass
class Outcome:
    module: str
    statuses: dict[str, str] = field(default_factory=dict)
    equivalent: dict[str, str] = field(default_factory=dict)  # mutant -> reason
    stale: list[str] = field(default_factory=list)
    seconds: float | None = None

    @property
    def killed(self) -> int:
        return sum(s in KILLED for s in self.statuses.values())

    @property
    def survivors(self) -> list[str]:
        return sorted(m for m, s in self.statuses.items()
                      if s not in KILLED and s not in NOT_RUN and m not in self.equivalent)

    @property
    def not_run(self) -> int:
        return sum(s in NOT_RUN for s in self.statuses.values())

    @property
    def score(self) -> float:
        counted = len(self.statuses) - len(self.equivalent)
        return 100.0 * self.killed / counted if counted else 100.0


def selection(module: str) -> list[str]:
    """The module's pytest arguments, less the test files that do not exist (yet): a file named in
    MODULES before anyone wrote it must not fail the whole run."""
    return [a for a in MODULES[module] if not (a.startswith("tests/") and not (ROOT / a.split("::")[0]).exists())]


def workdir(module: str) -> Path:
    return WORK / Path(module).with_suffix("").as_posix().removeprefix("lfharness/").replace("/", ".")


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"[tool.mutmut] value {value!r} not supported here")


def prepare(module: str) -> Path:
    """A fresh work folder for one module: links to the tree, a pyproject.toml for mutmut."""
    base = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    settings = dict(base, only_mutate=[module], pytest_add_cli_args_test_selection=selection(module))
    folder = workdir(module)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name in LINKED:
        (folder / name).symlink_to(ROOT / name)
    (folder / "mutants").mkdir()
    for name in READ_BY_TESTS:
        if (ROOT / name).exists():
            (folder / "mutants" / name).symlink_to(ROOT / name)
    (folder / "pyproject.toml").write_text(
        "# Written by benchmarks/mutation.py for one module; the settings are the repository's [tool.mutmut].\n"
        "[tool.mutmut]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in settings.items()))
    return folder


def _mutmut(folder: Path, *args: str, log: Path | None = None) -> str:
    command = [sys.executable, "-m", "mutmut", *args]
    if log is None:
        return subprocess.run(command, cwd=folder, capture_output=True, text=True, check=True).stdout
    with log.open("w") as out:
        subprocess.run(command, cwd=folder, stdout=out, stderr=subprocess.STDOUT, check=True)
    return ""


def equivalents() -> dict[str, tuple[str, str]]:
    """mutant name -> (the line the mutation produces, why it changes no behaviour)."""
    listed = {}
    lines = [raw for path in sorted(EQUIVALENTS.glob("*.txt")) for raw in path.read_text().splitlines()]
    for raw in lines:
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        # The line may hold " | " itself (`str | None`): the name is before the first, the reason after the last.
        name, rest = raw.split(" | ", 1)
        line, reason = rest.rsplit(" | ", 1)
        listed[name.strip()] = (line.strip(), reason.strip())
    return listed


_SHOW = ("import sys\nfrom mutmut.__main__ import show\n"
         "for name in sys.argv[1:]:\n    show.callback(name)\n    print('\\0')\n")


def _diffs(folder: Path, names: list[str]) -> dict[str, str]:
    """`mutmut show` of each mutant, in one process."""
    if not names:
        return {}
    out = subprocess.run([sys.executable, "-c", _SHOW, *names], cwd=folder, capture_output=True, text=True,
                         check=True).stdout
    return dict(zip(names, (d.strip("\n") for d in out.split("\0\n")), strict=False))


def collect(module: str, seconds: float | None = None) -> Outcome:
    """The verdicts of the module's last run, with the listed equivalents applied."""
    folder = workdir(module)
    outcome = Outcome(module, seconds=seconds)
    for line in _mutmut(folder, "results", "--all", "true").splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep:
            outcome.statuses[name] = status
    listed = equivalents()
    diffs = []
    unkilled = sorted(m for m, s in outcome.statuses.items() if s not in KILLED and s not in NOT_RUN)
    for name, diff in _diffs(folder, unkilled).items():
        if name in listed:
            line, reason = listed[name]
            if any(d.startswith("+") and d[1:].strip() == line for d in diff.splitlines()):
                outcome.equivalent[name] = reason
                continue
            outcome.stale.append(name)
        diffs.append(diff)
    (folder / "survivors.txt").write_text("\n\n".join(diffs) + "\n")
    return outcome


def run(module: str) -> Outcome:
    folder = prepare(module)
    started = time.monotonic()
    print(f"{module}: mutmut run --max-children 1 in {folder.relative_to(ROOT)} (log: run.log)", flush=True)
    try:
        _mutmut(folder, "run", "--max-children", "1", log=folder / "run.log")
    except subprocess.CalledProcessError:
        print((folder / "run.log").read_text()[-4000:], file=sys.stderr)
        raise
    seconds = time.monotonic() - started
    (folder / "seconds").write_text(f"{seconds:.0f}\n")
    return collect(module, seconds)


def table(outcomes: list[Outcome]) -> str:
    rows = ["| module | mutants | killed | survived | equivalent | not run | score | run time |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for o in outcomes:
        took = f"{o.seconds:.0f} s" if o.seconds is not None else "-"
        # A mutant not run yet counts against the score: an unfinished run cannot claim it.
        score = f"{o.score:.1f}%" + (" (run incomplete)" if o.not_run else "")
        rows.append(f"| {o.module} | {len(o.statuses)} | {o.killed} | {len(o.survivors)} | {len(o.equivalent)} "
                    f"| {o.not_run} | {score} | {took} |")
    for o in outcomes:
        for name in o.survivors:
            rows.append(f"survived: {name} ({o.statuses[name]}{', stale equivalent entry' if name in o.stale else ''})")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Modules and their tests: " + "; ".join(
                                         f"{m}: {', '.join(t)}" for m, t in MODULES.items()))
    parser.add_argument("--module", action="append", choices=sorted(MODULES), metavar="PATH",
                        help="an operator module (repeatable); default: all of them")
    parser.add_argument("--tests", nargs="+", metavar="ARG",
                        help="with one --module: run these pytest arguments per mutant instead of the module's "
                             "own (to try a new test file before it is listed)")
    parser.add_argument("--report", action="store_true",
                        help="print the table of the modules' last runs without running mutmut")
    parser.add_argument("--min-score", type=float, default=90.0,
                        help="exit 1 when a module scores below this (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.tests:
        if not args.module or len(args.module) != 1:
            parser.error("--tests needs exactly one --module")
        MODULES[args.module[0]] = tuple(args.tests)
    os.chdir(ROOT)
    outcomes = []
    for module in args.module or list(MODULES):
        if args.report:
            if not (workdir(module) / "mutants").is_dir():
                print(f"{module}: not run yet")
                continue
            seconds_file = workdir(module) / "seconds"
            outcomes.append(collect(module, float(seconds_file.read_text()) if seconds_file.exists() else None))
        else:
            outcomes.append(run(module))
            print(table(outcomes[-1:]).split("\n")[2], flush=True)
    print(table(outcomes))
    return 0 if all(o.score >= args.min_score for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
