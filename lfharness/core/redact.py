"""Secrets out of sight: one registry of known secret values per run, and the masking of every text
the harness writes (run logs, exception messages, log records, pytest reports).

A `Redactor` is owned by the run (the pytest session stashes one, a `Stack` makes its own when none
is handed to it), not by the module: two runs in one process never share or leak each other's
values. It learns secrets as the harness does: the .env secrets at start, every sensitive Terraform
output as soon as it is read, and the secret-bearing values of a workspace's state before and after
each command that can print them (a destroy prints a `random_id`'s hex, the helm provider prints
`helm_release.metadata.values` in clear on update and destroy).

`Secret` is the second line: a `str` whose repr is masked, so pytest's assertion rewriting, the
argument lists of long tracebacks and dataclass/dict reprs show `'***'` even where no text mask
runs. It is still the value for everything that uses it (psycopg, boto3, f-strings).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TextIO
from urllib.parse import quote
from xml.sax.saxutils import escape as xml_escape

LOG = logging.getLogger("lfharness.core.redact")

MASK = "***"
# Shorter values are not masked: Terraform states hold ids and names such as "none" or
# "langfuse" next to secrets, and masking those everywhere would make the logs unreadable. Every
# generated secret of the stack is 32+ characters, the .env secrets 12+ (envfile's rules).
MIN_LENGTH = 12
GITHUB_ACTIONS_ENV = "GITHUB_ACTIONS"
# A shortened repr's ellipsis, and the shortest piece of a secret masked beside one: 3 characters
# of 32+ tell nothing, and masking them would hide ordinary words before "...".
ELLIPSIS = "..."
MIN_PIECE = 4
# The longest piece a shortened repr leaves beside its ellipsis: pytest's saferepr cuts to 240 characters.
PIECE_WINDOW = 240

# Resource types whose string attributes are secrets although the provider does not mark them
# sensitive: random_id is documented as not secret, yet 03-app uses it as ENCRYPTION_KEY, and every
# representation of the bytes (id is the base64url form) appears in create and destroy output.
SECRET_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "random_password": ("result", "bcrypt_hash"),
    "random_string": ("result", "id"),
    "random_id": ("id", "hex", "b64_std", "b64_url", "dec"),
    "random_bytes": ("base64", "hex"),
    "tls_private_key": ("private_key_pem", "private_key_openssh", "private_key_pem_pkcs8"),
}


class Secret(str):
    """A secret value: a `str` for every use, `'***'` for repr (assertion messages, tracebacks,
    containers' reprs). Operations that derive a new string (slicing, concatenation) return a plain
    `str`: the `Redactor` that made the Secret still masks it in text."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(MASK)


def _variants(value: str) -> set[str]:
    """The forms a secret takes in the texts the harness writes: as is, JSON-escaped (metadata.values,
    `-json` output), URL-encoded (connection URLs), base64 (Kubernetes Secret data), repr-escaped
    (pytest's output), escaped as pytest escapes test ids, XML-escaped (junit)."""
    # Python's repr (pytest's assertion diffs and argument lists) escapes a backslash, the quote it
    # encloses with and control characters: a value holding `"` and `\` shows in another form.
    printed = repr(value)[1:-1]
    # pytest's test ids (`test_login[<value>]`, its ascii_escaped) escape the backslash, control and
    # non-ASCII characters but no quote: a value holding `'` and `"`, or an `é`, differs from its repr.
    in_id = value.encode("unicode_escape").decode("ascii")
    forms = {value, json.dumps(value)[1:-1], quote(value, safe=""), printed, in_id,
             base64.b64encode(value.encode()).decode()}
    for form in (value, printed, in_id):  # junit XML's text and attributes
        forms |= {xml_escape(form), xml_escape(form, {'"': "&quot;"})}
    # Each line of a multi-line value too: a log may print it re-indented or with other line endings.
    lines = value.splitlines()
    if len(lines) > 1:
        forms |= {line.strip() for line in lines}
    return {f for f in forms if len(f) >= MIN_LENGTH}


class Redactor:
    """The secret values one run knows, and the masking of text with them.

    `mask` replaces every known value (longest first, one pass) with ***. `add` registers values;
    under GitHub Actions each new value is also announced to the runner's log masker with
    `::add-mask::` (through `announce`, which the pytest plugin points past pytest's output capture).
    The values themselves are never exposed: repr shows only how many there are.
    """

    def __init__(self, secrets: Iterable[str] = (), *, announce: Callable[[str], None] | None = None) -> None:
        self._values: set[str] = set()
        self._registered: set[str] = set()  # the values as added, for handover()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()
        self.announce = announce if announce is not None else _announce_to_stdout
        self.add(*secrets)

    def __repr__(self) -> str:
        return f"Redactor({len(self._values)} values)"

    def __len__(self) -> int:
        return len(self._values)

    def knows(self, value: str) -> bool:
        """Whether value (or a form of it) would be masked."""
        return bool(value) and value in self._values

    def add(self, *values: object) -> None:
        """Registers secret values; non-strings, empty and too short values are ignored."""
        new: set[str] = set()
        registered: set[str] = set()
        for value in values:
            if isinstance(value, str) and len(value) >= MIN_LENGTH:
                registered.add(str(value))
                new |= _variants(str(value)) - self._values
        if not new:
            return
        with self._lock:
            self._values |= new
            self._registered |= registered
            self._pattern = None
        if os.environ.get(GITHUB_ACTIONS_ENV) == "true":
            for value in sorted(new):
                self.announce(value)

    def handover(self) -> list[str]:
        """The values as they were added (not their forms), for another process's Redactor to `add`:
        pytest-xdist's workers hand theirs to the controller, which writes the junit XML. Only for
        that: the list holds every secret in clear."""
        with self._lock:
            return sorted(self._registered)

    def secret(self, value: str) -> Secret:
        """value registered and wrapped: what a reader of a secret hands on."""
        self.add(value)
        return Secret(value)

    def add_and_return(self, value: str) -> str:
        """value registered, returned as it is: for a client library that needs the plain string."""
        self.add(value)
        return value

    def learn(self, value: Any) -> Any:
        """Registers every string inside value (a sensitive output may be a map or list) and returns
        value with those strings as `Secret`s."""
        if isinstance(value, str):
            return self.secret(value)
        if isinstance(value, dict):
            return {k: self.learn(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.learn(v) for v in value)
        return value

    def mask(self, text: str) -> str:
        """text with every known secret replaced by ***, and the pieces of one that a shortened repr
        left on either side of an ellipsis."""
        if not text or not self._values:
            return text
        with self._lock:
            if self._pattern is None:
                self._pattern = re.compile("|".join(re.escape(v) for v in sorted(self._values, key=len, reverse=True)))
            pattern, values = self._pattern, tuple(self._values)
        masked = pattern.sub(MASK, text)
        return _mask_cut_pieces(masked, values) if ELLIPSIS in masked else masked

    def learn_state(self, state: dict[str, Any]) -> int:
        """Registers the secrets of a `terraform show -json` document: every value Terraform marks
        sensitive (outputs, attributes) and the SECRET_ATTRIBUTES of their resource types.
        Returns how many values were found (not their forms)."""
        found = list(state_secrets(state))
        self.add(*found)
        return len(found)


def _piece_at_end(text: str, heads: dict[str, list[str]]) -> int:
    """Length of the longest start of a value (MIN_PIECE or more, not all of it) that text ends with."""
    for at in range(max(0, len(text) - PIECE_WINDOW), len(text) - MIN_PIECE + 1):
        candidates = heads.get(text[at:at + MIN_PIECE])
        if candidates and any(len(text) - at < len(v) and v.startswith(text[at:]) for v in candidates):
            return len(text) - at
    return 0


def _piece_at_start(text: str, tails: dict[str, list[str]]) -> int:
    """Length of the longest end of a value (MIN_PIECE or more, not all of it) that text starts with."""
    for upto in range(min(len(text), PIECE_WINDOW), MIN_PIECE - 1, -1):
        candidates = tails.get(text[upto - MIN_PIECE:upto])
        if candidates and any(upto < len(v) and v.endswith(text[:upto]) for v in candidates):
            return upto
    return 0


def _mask_cut_pieces(text: str, values: Iterable[str]) -> str:
    """text with the pieces of secrets next to each ellipsis masked.

    pytest's saferepr and reprlib shorten a long repr by cutting out its middle
    (`s[:i] + "..." + s[-j:]`), and a secret across a cut leaves its start before the ellipsis and
    its end after it: neither matches the whole value. Values are indexed by their first and last
    MIN_PIECE characters, so a run log full of "Still creating..." costs little.
    """
    heads: dict[str, list[str]] = {}
    tails: dict[str, list[str]] = {}
    for value in values:
        heads.setdefault(value[:MIN_PIECE], []).append(value)
        tails.setdefault(value[-MIN_PIECE:], []).append(value)
    parts = text.split(ELLIPSIS)
    for index, part in enumerate(parts):
        start = _piece_at_start(part, tails) if index > 0 else 0
        end = _piece_at_end(part, heads) if index < len(parts) - 1 else 0
        if start + end >= len(part) and (start or end):
            parts[index] = MASK
        elif start or end:
            parts[index] = (MASK if start else "") + part[start:len(part) - end] + (MASK if end else "")
    return ELLIPSIS.join(parts)


def _announce_to_stdout(value: str, stream: TextIO | None = None) -> None:
    # The runner reads workflow commands from the step's stdout and does not echo them. A command
    # ends at its line's end and the runner masks line by line, so a multi-line value is announced
    # one line at a time; the runner unescapes %25, %0D and %0A in the data, so "%" is escaped.
    out = stream or sys.stdout
    lines = value.splitlines() or [value]
    for line in lines if len(lines) == 1 else [line.strip() for line in lines if len(line.strip()) >= MIN_LENGTH]:
        out.write(f"::add-mask::{line.replace('%', '%25')}\n")
    out.flush()


def _marked(values: Any, marks: Any) -> Iterator[str]:
    """Strings of `values` where the parallel `sensitive_values` structure says true."""
    if marks is True:
        yield from _strings(values)
    elif isinstance(marks, dict) and isinstance(values, dict):
        for key, mark in marks.items():
            yield from _marked(values.get(key), mark)
    elif isinstance(marks, list) and isinstance(values, list):
        for value, mark in zip(values, marks, strict=False):  # marks may stop short: unmarked
            yield from _marked(value, mark)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _modules(module: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield module
    for child in module.get("child_modules", []):
        yield from _modules(child)


def state_secrets(state: dict[str, Any]) -> Iterator[str]:
    """The secret strings of a `terraform show -json` state (see Redactor.learn_state)."""
    values = state.get("values") or {}
    for output in (values.get("outputs") or {}).values():
        if output.get("sensitive"):
            yield from _strings(output.get("value"))
    for module in _modules(values.get("root_module") or {}):
        for resource in module.get("resources", []):
            attrs = resource.get("values") or {}
            if resource.get("type") == "tfe_outputs":
                # Its `values` is marked sensitive as a whole but holds every upstream output; the
                # non-sensitive ones (cluster_name, vpc_id, ...) are repeated in nonsensitive_values.
                plain = attrs.get("nonsensitive_values") or {}
                yield from _strings({k: v for k, v in (attrs.get("values") or {}).items() if k not in plain})
                continue
            yield from _marked(attrs, resource.get("sensitive_values") or {})
            for name in SECRET_ATTRIBUTES.get(resource.get("type", ""), ()):
                yield from _strings(attrs.get(name))


class RecordMasker(logging.Filter):
    """Masks every log record with the redactor's values as they are when the record is made."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        # Merge args into the message first: a secret can be split across msg and args.
        try:
            message = record.getMessage()
        except (TypeError, ValueError, KeyError):
            # Arguments that do not fit the format (a mapping without a key the format names raises
            # KeyError): logging reports such a call when it formats the record; here it must not
            # raise at the call site. Kept unmerged, both masked.
            record.msg = self.redactor.mask(str(record.msg))
            record.args = tuple(self.redactor.mask(repr(arg)) for arg in (
                record.args if isinstance(record.args, tuple) else (record.args,)))
        else:
            record.msg = self.redactor.mask(message)
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor.mask(record.exc_text)
        return True


def install_record_masking(redactor: Redactor) -> Callable[[], None]:
    """Masks secrets in every log record created from now on, whichever logger or handler (pytest's
    live log and capture handlers included) emits it, with the values the redactor knows at that
    moment (so secrets learned later are covered too). Returns a function that undoes it."""
    previous = logging.getLogRecordFactory()
    masker = RecordMasker(redactor)

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        masker.filter(record)
        return record

    logging.setLogRecordFactory(factory)
    return lambda: logging.setLogRecordFactory(previous)
