"""Checks of the Markdown docs against the repository: relative links resolve (files and #anchors,
by GitHub's heading slugs) and the harness commands they show exist (`python -m lfharness <sub>
--flag`, `pytest -m <marker> --flag`).

Only code (fenced blocks and `inline` spans) is read for commands, so prose can name things
freely; only relative links are followed, nothing is fetched.
"""

from __future__ import annotations

import argparse
import configparser
import importlib.util
import re
import shlex
import subprocess
import sys
import urllib.parse
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

PYTEST_HELP_TIMEOUT = 60.0
_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_HTML_ID = re.compile(r"""<a\s+[^>]*?(?:name|id)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
# [text](target "title") and ![alt](target); the target ends at whitespace or the closing paren.
_INLINE_LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'][^)]*[\"'])?\s*\)")
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_SEPARATORS = re.compile(r"\s*(?:&&|\|\||[|;])\s*")
_MARKER_WORDS = {"and", "or", "not"}


@dataclass(frozen=True)
class Problem:
    """One broken link or unknown command, where it is."""

    file: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its text lowercased, punctuation dropped (letters, digits,
    `_`, `-` and spaces kept), spaces turned into `-`. Markup is reduced to its text first."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text)
    text = text.replace("`", "")
    text = re.sub(r"(\*\*|__|\*|(?<!\w)_|_(?!\w))", "", text)
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def _lines_outside_fences(text: str) -> Iterator[tuple[int, str, bool]]:
    """(line number, line, inside a fenced code block) for every line."""
    fenced = None
    for number, line in enumerate(text.splitlines(), 1):
        match = _FENCE.match(line)
        if match and (fenced is None or match.group(1) == fenced):
            fenced = match.group(1) if fenced is None else None
            yield number, line, True
            continue
        yield number, line, fenced is not None


def anchors(path: Path) -> set[str]:
    """Every anchor a Markdown file offers: heading slugs (repeats get -1, -2 as on GitHub) and
    explicit <a name|id="...">."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for _number, line, fenced in _lines_outside_fences(path.read_text()):
        if fenced:
            continue
        found.update(_HTML_ID.findall(line))
        match = _HEADING.match(line)
        if match:
            slug = github_slug(match.group(2))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def _strip_code_spans(line: str) -> str:
    return _CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)


def links(path: Path) -> Iterator[tuple[int, str]]:
    """(line, target) of every link in a Markdown file outside code."""
    for number, line, fenced in _lines_outside_fences(path.read_text()):
        if fenced:
            continue
        prose = _strip_code_spans(line)
        for match in _INLINE_LINK.finditer(prose):
            yield number, match.group(1)
        reference = _REFERENCE.match(prose)
        if reference:
            yield number, reference.group(1)


def link_problems(files: Iterable[Path]) -> list[Problem]:
    """Every relative link (file, folder, file#anchor, #anchor) that does not resolve."""
    problems = []
    cache: dict[Path, set[str]] = {}
    for md in files:
        for number, target in links(md):
            if _SCHEME.match(target) or target.startswith("//"):
                continue
            raw_path, _, fragment = target.partition("#")
            raw_path = raw_path.split("?", 1)[0]
            dest = (md.parent / urllib.parse.unquote(raw_path)).resolve() if raw_path else md.resolve()
            if not dest.exists():
                problems.append(Problem(md, number, f"link {target!r}: {raw_path} does not exist"))
                continue
            if fragment and dest.is_file() and dest.suffix.lower() == ".md":
                if dest not in cache:
                    cache[dest] = anchors(dest)
                if urllib.parse.unquote(fragment).lower() not in cache[dest]:
                    problems.append(Problem(md, number, f"link {target!r}: no heading with anchor "
                                                        f"#{fragment} in {dest.name}"))
    return problems


# --- commands ---------------------------------------------------------------------------------

def code_snippets(path: Path) -> Iterator[tuple[int, str]]:
    """(line, code) of every fenced code line and every inline code span of a Markdown file."""
    for number, line, fenced in _lines_outside_fences(path.read_text()):
        if fenced:
            if not _FENCE.match(line):
                yield number, line
        else:
            for match in _CODE_SPAN.finditer(line):
                yield number, match.group(2)


def _words(command: str) -> list[str]:
    try:
        return shlex.split(command, comments=True)
    except ValueError:
        # An unbalanced quote in a doc snippet: plain words are still good enough to find flags.
        return command.split()


def commands(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line, argv) of every simple command in the code of a Markdown file (split at && || | ;),
    with leading VAR=value assignments dropped."""
    for number, code in code_snippets(path):
        for part in _SEPARATORS.split(code):
            words = _words(part)
            while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=\S*", words[0]):
                words = words[1:]
            if words:
                yield number, words


@dataclass(frozen=True)
class Cli:
    """What the harness's commands accept: subcommand -> its option strings, and pytest's."""

    harness: dict[str, set[str]]
    harness_global: set[str]
    pytest_options: set[str]
    markers: set[str]
    package_root: Path


def harness_cli(parser: argparse.ArgumentParser) -> tuple[dict[str, set[str]], set[str]]:
    """Subcommands of an argparse parser with their option strings, and the top-level options."""
    subcommands: dict[str, set[str]] = {}
    for action in parser._actions:  # noqa: SLF001 - argparse offers no public walk of subparsers
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for name, sub in action.choices.items():
                subcommands[name] = set(sub._option_string_actions)  # noqa: SLF001
    return subcommands, set(parser._option_string_actions)  # noqa: SLF001


def pytest_markers(ini: Path) -> set[str]:
    """Markers declared in pytest.ini's `markers` (one `name: description` or `name(args)` a line)."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(ini)
    declared = config.get("pytest", "markers", fallback="")
    return {re.split(r"[:(]", line.strip(), maxsplit=1)[0].strip() for line in declared.splitlines() if line.strip()}


def pytest_options(rootdir: Path) -> set[str]:
    """Every --option `pytest --help` lists for this repository (its plugins included)."""
    proc = subprocess.run([sys.executable, "-m", "pytest", "--help", "-p", "no:cacheprovider"], cwd=rootdir,
                          capture_output=True, text=True, timeout=PYTEST_HELP_TIMEOUT, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"pytest --help in {rootdir} exited {proc.returncode}: {proc.stderr.strip()[-1000:]}")
    return set(re.findall(r"(?<![\w-])(--[a-zA-Z][\w-]*|-[a-zA-Z])\b", proc.stdout))


def _option(word: str) -> str | None:
    """The option a word names (`[--json` -> --json, `--var=X` -> --var), or None for an argument."""
    word = word.strip("[]()`'\",.")
    if not word.startswith("-") or word in ("-", "--") or re.fullmatch(r"-\d.*", word):
        return None
    return word.split("=", 1)[0]


def _marker_names(expression: str) -> set[str]:
    return {w for w in re.findall(r"[A-Za-z_][\w]*", expression) if w not in _MARKER_WORDS}


def _check_harness(words: list[str], cli: Cli) -> list[str]:
    module = words[2]
    if module != "lfharness":
        # python -m lfharness.testing.toolchain: the module must exist and be runnable.
        spec_path = cli.package_root.joinpath(*module.split("."))
        runnable = spec_path.with_suffix(".py")
        if not runnable.is_file() and not (spec_path / "__main__.py").is_file():
            return [f"`python -m {module}`: no module {module} in the repository"]
        if runnable.is_file() and "__main__" not in runnable.read_text():
            return [f"`python -m {module}`: {runnable.name} has no __main__ block"]
        return []
    rest = words[3:]
    if not rest or rest[0].startswith("-"):
        return [f"`python -m lfharness {o}`: no such option" for o in map(_option, rest)
                if o and o not in cli.harness_global]
    sub = rest[0].strip("[]<>`")
    if sub.isupper() or sub.startswith("<"):
        return []  # a placeholder such as COMMAND
    if sub not in cli.harness:
        return [f"`python -m lfharness {sub}`: no such subcommand (has: {', '.join(sorted(cli.harness))})"]
    return [f"`python -m lfharness {sub} {o}`: no such option" for o in map(_option, rest[1:])
            if o and o not in cli.harness[sub]]


def _check_pytest(words: list[str], cli: Cli) -> list[str]:
    found = []
    for index, word in enumerate(words):
        option = _option(word)
        if option is None:
            continue
        if option == "-m" and index + 1 < len(words):
            found += [f"`pytest -m {words[index + 1]}`: marker {m!r} is not declared in pytest.ini"
                      for m in sorted(_marker_names(words[index + 1]) - cli.markers)]
        elif option not in cli.pytest_options:
            found.append(f"`pytest {option}`: pytest has no such option")
    return found


def _check_bare_options(words: list[str], cli: Cli) -> list[str]:
    """A span of options alone (`--plan-dir DIR`, `-m plan`): the prose names its command, so an
    option only has to exist in some harness subcommand or in pytest. Single-dash words are left
    alone (terraform's -var, names such as `-master`)."""
    known = set(cli.pytest_options).union(cli.harness_global, *cli.harness.values())
    found = []
    for index, word in enumerate(words):
        option = _option(word)
        if option == "-m" and index + 1 < len(words):
            found += [f"`-m {words[index + 1]}`: marker {m!r} is not declared in pytest.ini"
                      for m in sorted(_marker_names(words[index + 1]) - cli.markers)]
        elif option and option not in known:
            found.append(f"`{option}`: no harness command nor pytest has this option")
    return found


def command_problems(files: Iterable[Path], cli: Cli) -> list[Problem]:
    """Every `python -m lfharness...` and `pytest` command in the files' code that names a
    subcommand, option or marker the harness does not have."""
    problems = []
    for md in files:
        for number, words in commands(md):
            program = Path(words[0]).name
            if program.startswith("python") and words[1:3] and words[1] == "-m" and len(words) > 2:
                if words[2] == "pytest":
                    messages = _check_pytest(words[3:], cli)
                elif words[2].split(".")[0] == "lfharness":
                    messages = _check_harness(words, cli)
                else:
                    messages = []
            elif program == "pytest":
                messages = _check_pytest(words[1:], cli)
            elif words[0].startswith("--") or (words[0] == "-m" and len(words) == 2):
                messages = _check_bare_options(words, cli)
            else:
                messages = []
            problems += [Problem(md, number, m) for m in messages]
    return problems


def project_cli(repo_root: Path) -> Cli:
    """The harness's real command line, pytest.ini's markers and pytest's options for repo_root."""
    spec = importlib.util.find_spec("lfharness.__main__")
    if spec is None or spec.loader is None:
        raise RuntimeError("lfharness.__main__ cannot be found on sys.path")
    main = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(main)
    harness, harness_global = harness_cli(main.build_parser())
    return Cli(harness=harness, harness_global=harness_global, pytest_options=pytest_options(repo_root),
               markers=pytest_markers(repo_root / "pytest.ini"), package_root=repo_root)


def doc_files(repo_root: Path) -> list[Path]:
    """README.md and every docs/*.md: the Markdown an operator or contributor reads."""
    return [repo_root / "README.md", *sorted((repo_root / "docs").glob("*.md"))]
