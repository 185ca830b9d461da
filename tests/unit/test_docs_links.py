"""README.md and docs/*.md hold together: relative links resolve and the harness commands they show
exist (FR30, FR31: what README tells an operator to run must run).

Stand-in: none for the real docs; the checker's own tests use small Markdown files in tmp_path
and a small argparse parser.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from lfharness.core import tf
from lfharness.testing import docs

pytestmark = pytest.mark.static


@pytest.fixture(scope="module")
def project_cli() -> docs.Cli:
    return docs.project_cli(tf.REPO_ROOT)


@pytest.fixture
def fake_cli(tmp_path: Path) -> docs.Cli:
    """A harness with one subcommand `plan --json` and pytest with --junitxml and marker `chart`."""
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    sub.add_parser("plan").add_argument("--json")
    harness, top = docs.harness_cli(parser)
    return docs.Cli(harness=harness, harness_global=top, pytest_options={"--junitxml", "-m", "-q"},
                    markers={"chart"}, package_root=tmp_path)


def _md(tmp_path: Path, text: str, name: str = "README.md") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_relative_link_in_readme_and_docs_resolves():
    """FR30: each relative link in README.md and docs/*.md points at a file that exists and, with
    #anchor, at a heading of that file (GitHub's anchor slugs)."""
    problems = docs.link_problems(docs.doc_files(tf.REPO_ROOT))
    assert not problems, "\n".join(map(str, problems))


def test_every_harness_command_readme_shows_exists(project_cli):
    """FR31: `python -m lfharness <sub> --flag`, `pytest -m <marker> --flag` in README's and docs'
    code name subcommands, options and markers the harness and pytest.ini declare."""
    problems = docs.command_problems(docs.doc_files(tf.REPO_ROOT), project_cli)
    assert not problems, "\n".join(map(str, problems))


def test_the_link_checker_catches_a_missing_file_and_a_missing_anchor(tmp_path):
    """The check can fail: a link to an absent file and one to an absent heading are both named."""
    (tmp_path / "docs").mkdir()
    _md(tmp_path / "docs", "# Testing\n\n## The chart tier\n", "testing.md")
    readme = _md(tmp_path, "See [tiers](docs/testing.md#the-chart-tier), [gone](docs/offline.md),\n"
                           "[typo](docs/testing.md#the-chart-tiers) and [here](#nowhere).\n\n# Top\n")
    problems = [p.message for p in docs.link_problems([readme])]
    assert problems == ["link 'docs/offline.md': docs/offline.md does not exist",
                        "link 'docs/testing.md#the-chart-tiers': no heading with anchor #the-chart-tiers in "
                        "testing.md",
                        "link '#nowhere': no heading with anchor #nowhere in README.md"]


def test_links_inside_code_are_not_links(tmp_path):
    """Code shows text, not links: `[x](missing.md)` in a code span or a fenced block is not checked."""
    readme = _md(tmp_path, "`[a](missing.md)`\n\n```\n[b](missing.md)\n```\n")
    assert docs.link_problems([readme]) == []


@pytest.mark.parametrize(("heading", "slug"), [
    ("By hand (raw Terraform CLI)", "by-hand-raw-terraform-cli"),
    ("Where the real modules and chart differ", "where-the-real-modules-and-chart-differ"),
    ("`LFK8S_CHART_DIR` and the *chart* tier", "lfk8s_chart_dir-and-the-chart-tier"),
    ("Cost: full, Spot & paused", "cost-full-spot--paused"),
    ("[Link](x.md) text", "link-text"),
])
def test_anchors_follow_githubs_slug_rules(heading, slug):
    """Lowercased, punctuation dropped (underscores and hyphens kept), each space a hyphen."""
    assert docs.github_slug(heading) == slug


def test_a_repeated_heading_gets_a_numbered_anchor(tmp_path):
    """GitHub suffixes repeats -1, -2: a link to the second "Usage" is #usage-1."""
    assert {"usage", "usage-1", "usage-2"} <= docs.anchors(_md(tmp_path, "# Usage\n## Usage\n### Usage\n"))


def test_the_command_checker_catches_unknown_subcommands_options_and_markers(tmp_path, fake_cli):
    """The check can fail: a subcommand, a subcommand option, a marker and a pytest option that do
    not exist are each named; the ones that exist pass."""
    readme = _md(tmp_path, "Run `python -m lfharness plan --json x` then `python -m lfharness plna`.\n\n"
                           "```bash\nLFK8S_CHART_DIR=/t .venv/bin/pytest tests/unit -m 'chart and not e2e' "
                           "--junit-xml=r.xml\n.venv/bin/python -m lfharness plan --jsn y && pytest -m chart -q\n"
                           "```\n")
    assert [(p.line, p.message) for p in docs.command_problems([readme], fake_cli)] == [
        (1, "`python -m lfharness plna`: no such subcommand (has: plan)"),
        (4, "`pytest -m chart and not e2e`: marker 'e2e' is not declared in pytest.ini"),
        (4, "`pytest --junit-xml`: pytest has no such option"),
        (5, "`python -m lfharness plan --jsn`: no such option"),
    ]


def test_a_module_run_with_python_m_must_exist(tmp_path, fake_cli):
    """`python -m lfharness.testing.<x>` names a module of the package that can run as a script."""
    (tmp_path / "lfharness" / "testing").mkdir(parents=True)
    (tmp_path / "lfharness" / "testing" / "tool.py").write_text('if __name__ == "__main__":\n    pass\n')
    readme = _md(tmp_path, "`python -m lfharness.testing.tool` and `python -m lfharness.testing.toool`\n")
    assert [p.message for p in docs.command_problems([readme], fake_cli)] == [
        "`python -m lfharness.testing.toool`: no module lfharness.testing.toool in the repository"]


def test_an_option_shown_alone_must_exist_somewhere(tmp_path, fake_cli):
    """A span such as `--json` or `-m chart` next to prose naming its command is checked against
    every harness subcommand and pytest; terraform's single-dash flags are not the harness's."""
    readme = _md(tmp_path, "Add `--json`, `--jsonn PATH` or `-m chart`, `-m chrt`; terraform's `-var` is not ours.\n")
    assert [p.message for p in docs.command_problems([readme], fake_cli)] == [
        "`--jsonn`: no harness command nor pytest has this option",
        "`-m chrt`: marker 'chrt' is not declared in pytest.ini"]
