"""The redaction mechanism at its edges (NFR1, issue 28): values of exactly the shortest length, secrets
cut by a shortened repr on either side of an ellipsis, states whose sensitive marks meet null or list
attributes, several values learned one after another, the hand-over between processes, the log
record masking of a call whose arguments do not fit, and the `::add-mask::` lines of GitHub Actions.
No stand-in: plain generated values and `terraform show -json`-shaped documents.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import secrets

import pytest

from lfharness.core import redact

pytestmark = pytest.mark.static


def _token(length: int = 32) -> str:
    """A generated secret of `length` characters, without a fixed prefix or a "." (no ellipsis in it)."""
    return secrets.token_urlsafe(length)[:length]


def _runner_masks(step_output: str) -> set[str]:
    """The values a GitHub Actions runner registers from a step's `::add-mask::` lines (unescaped as
    the runner does)."""
    return {line.removeprefix("::add-mask::").replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")
            for line in step_output.splitlines() if line.startswith("::add-mask::")}


# Lengths and growth of what a redactor knows.

def test_a_secret_of_exactly_the_shortest_masked_length_is_masked():
    """NFR1: .env secrets must have 12 characters or more (envfile's rules): one of exactly
    MIN_LENGTH is a secret like any other and never shows."""
    value = secrets.token_hex(redact.MIN_LENGTH // 2)
    assert redact.Redactor([value]).mask(f"password={value};") == "password=***;"


def test_a_secret_added_later_does_not_unmask_the_ones_added_before():
    """NFR1: the harness learns secrets one by one (the .env at start, each sensitive output as it is
    read): every value added stays masked after the next one is added."""
    first, second = _token(), _token()
    redactor = redact.Redactor()
    redactor.add(first)
    redactor.add(second)
    assert redactor.mask(f"{first} {second}") == "*** ***"


def test_when_one_secret_starts_another_the_longer_is_masked_whole():
    """NFR1: a value that begins with another registered value (a password, and a connection string
    that starts with it) is masked whole, not as *** followed by the rest of it in clear."""
    inner = _token()
    longer = inner + "@db.internal:5432/" + _token(16)
    redactor = redact.Redactor([inner, longer])
    assert redactor.mask(f"url {longer} end") == "url *** end"


def test_a_two_line_secret_is_masked_line_by_line_where_a_log_reindents_it():
    """NFR1: a multi-line secret (a PEM body) printed re-indented shows each of its lines alone; a value
    of two lines is masked line by line too, not only from three lines on."""
    first, second = secrets.token_hex(16), secrets.token_hex(16)
    redactor = redact.Redactor([f"{first}\n{second}"])
    assert redactor.mask(f"    {first}\n    {second}\n") == "    ***\n    ***\n"


def test_a_multi_line_secret_is_masked_in_its_base64_form():
    """NFR1: a Kubernetes Secret holds a multi-line key base64-encoded, where none of its lines
    appears: the whole value's base64 form is masked too."""
    value = f"{secrets.token_hex(16)}\n{secrets.token_hex(16)}\n"
    encoded = base64.b64encode(value.encode()).decode()
    assert redact.Redactor([value]).mask(f"data: {encoded}") == "data: ***"


# What the stack and other processes ask of a redactor.

def test_knows_is_true_for_a_registered_value_only():
    """NFR1: the stack wraps the environment values the redactor knows as Secret (their repr masked)
    and leaves the others, such as the region, readable: knows() must tell them apart."""
    value = _token()
    redactor = redact.Redactor([value])
    assert (redactor.knows(value), redactor.knows("us-east-1-region"), redactor.knows("")) == (True, False, False)


def test_add_and_return_registers_the_value_it_hands_back_unchanged():
    """NFR1: a client library gets the plain string, and from then on the value is masked."""
    value = _token()
    redactor = redact.Redactor()
    assert (redactor.add_and_return(value), redactor.mask(value)) == (value, "***")


def test_a_handover_lets_another_redactor_mask_every_value_learned_one_by_one():
    """NFR1: pytest-xdist's workers hand the values they learned to the controller, which writes the
    junit XML: a redactor built from the handover masks each value, and its other forms, learned in
    separate steps."""
    first, second = _token(), 'pa"ss' + _token()
    worker = redact.Redactor()
    worker.add(first)
    worker.add(second)
    controller = redact.Redactor(worker.handover())
    assert controller.mask(f"{first} {json.dumps(second)}") == '*** "***"'


def test_the_repr_of_a_secret_shows_the_mask():
    """NFR1: an assertion message or traceback shows a Secret as '***', recognisably masked (not as
    another value a reader could take for the real one)."""
    assert repr(redact.Redactor().secret(_token())) == repr(redact.MASK)


# Pieces of a secret beside the ellipsis of a shortened repr.

@pytest.mark.parametrize("kept", [10, 11])
def test_the_end_of_a_secret_after_an_ellipsis_is_masked(kept):
    """NFR1: a shortened repr keeps a secret's start before its ellipsis and its end after it
    (`s[:i] + "..." + s[-j:]`); the end is masked as the start is, the text around both kept
    (two lengths of the kept end: the search steps one character at a time)."""
    value = _token()
    shortened = f"{{'key': '{value[:8]}...{value[-kept:]}', 'next': 1}}"
    assert redact.Redactor([value]).mask(shortened) == "{'key': '***...***', 'next': 1}"


def test_a_secret_shortened_to_its_two_ends_shows_only_masks():
    """NFR1: when the text on each side of the ellipsis is all a piece of the secret, nothing but
    the masks remains."""
    value = _token()
    assert redact.Redactor([value]).mask(f"{value[:10]}...{value[-10:]}") == "***...***"


def test_pieces_of_the_shortest_masked_length_beside_an_ellipsis_are_masked():
    """NFR1: MIN_PIECE characters of a secret beside an ellipsis are masked (shorter pieces tell
    nothing of a 32-character secret)."""
    value = _token()
    piece = redact.MIN_PIECE
    assert redact.Redactor([value]).mask(f"x {value[:piece]}...{value[-piece:]} y") == "x ***...*** y"


def test_a_key_prefix_at_the_end_of_a_text_stays_readable():
    """Masking only what is secret keeps the run logs useful: Langfuse's secret keys start with
    "sk-lf-", which is no secret; a text ending with it, not cut by an ellipsis, keeps it."""
    redactor = redact.Redactor(["sk-lf-" + secrets.token_hex(16)])
    text = "waiting... secret keys start with sk-lf-"
    assert redactor.mask(text) == text


def test_another_key_with_the_same_prefix_before_an_ellipsis_stays_readable():
    """Masking only what is secret: a shortened repr of another key that shares the known key's
    "sk-lf-" prefix, but not its characters after, is no piece of the known key."""
    redactor = redact.Redactor(["sk-lf-" + secrets.token_hex(16)])
    text = f"expected {('sk-lf-' + secrets.token_hex(16))[:20]}... got none"
    assert redactor.mask(text) == text


# Secrets of a Terraform state.

def test_learn_state_masks_each_string_of_a_sensitive_list_output():
    """FR17, NFR1: a sensitive output may be a list: each of its strings is a secret."""
    first, second = _token(), _token()
    redactor = redact.Redactor()
    redactor.learn_state({"values": {"outputs": {"keys": {"sensitive": True, "value": [first, second]}}}})
    assert redactor.mask(f"{first} {second}") == "*** ***"


def test_learn_state_masks_the_marked_elements_of_a_list_attribute_and_keeps_the_rest():
    """NFR1: Terraform marks a list attribute element by element, and its marks may stop before the
    list ends: the marked strings are secrets, the unmarked ones stay readable."""
    secret, plain = _token(), "langfuse-readable-name"
    state = {"values": {"root_module": {"resources": [
        {"address": "x.y", "type": "kubernetes_secret_v1", "values": {"items": [secret, plain]},
         "sensitive_values": {"items": [True]}}]}}}
    redactor = redact.Redactor()
    redactor.learn_state(state)
    assert redactor.mask(f"{secret} {plain}") == f"*** {plain}"


def test_learn_state_reads_a_state_whose_marked_attributes_are_null():
    """NFR1: a state whose sensitive_values names attributes that are null in its values (an absent
    nested block or list) is read, and its other secrets are learned."""
    password = _token()
    state = {"values": {"root_module": {"resources": [
        {"address": "x.y", "type": "kubernetes_secret_v1",
         "values": {"block": None, "items": None, "password": password},
         "sensitive_values": {"block": {"inner": True}, "items": [{"inner": True}], "password": True}}]}}}
    redactor = redact.Redactor()
    redactor.learn_state(state)
    assert redactor.mask(password) == "***"


def test_learn_state_reads_a_root_module_that_holds_only_child_modules():
    """NFR1: Terraform leaves out `resources` of a module that has none of its own: the secrets of
    its child modules are learned all the same."""
    password = _token()
    state = {"values": {"root_module": {"child_modules": [{"resources": [
        {"address": "module.m.random_password.p", "type": "random_password", "values": {"result": password},
         "sensitive_values": {"result": True}}]}]}}}
    redactor = redact.Redactor()
    redactor.learn_state(state)
    assert redactor.mask(password) == "***"


def test_learn_state_goes_on_to_the_resources_after_a_tfe_outputs():
    """FR17, NFR1: 03-app reads its upstreams with tfe_outputs, then creates its own secrets: the
    resources after a tfe_outputs are read too."""
    upstream, own = _token(), _token()
    state = {"values": {"root_module": {"resources": [
        {"address": "data.tfe_outputs.deps", "type": "tfe_outputs",
         "values": {"values": {"rds_password": upstream}, "nonsensitive_values": {}}},
        {"address": "random_password.salt", "type": "random_password", "values": {"result": own},
         "sensitive_values": {"result": True}}]}}}
    redactor = redact.Redactor()
    redactor.learn_state(state)
    assert redactor.mask(f"{upstream} {own}") == "*** ***"


# Log records.

def test_undoing_record_masking_ends_it():
    """NFR1: two runs in one process never share their redactors: once a run undoes its record
    masking, its redactor no longer rewrites the records made afterwards."""
    value = _token()
    logger = logging.getLogger("lfharness.test.undo")
    undo = redact.install_record_masking(redact.Redactor([value]))
    undo()
    record = logger.makeRecord(logger.name, logging.INFO, __file__, 1, "value %s", (value,), None)
    assert record.getMessage() == f"value {value}"


@pytest.mark.parametrize("call", ["positional", "mapping"])
def test_a_log_call_whose_arguments_do_not_fit_is_reported_with_its_message_and_masked_arguments(
        call, monkeypatch, capsys):
    """NFR1: logging reports a call whose arguments do not fit its format on stderr, with the message
    and the arguments, as it does without masking; masking keeps both and hides the secret in them.
    A mapping without a key the format names must not raise at the call site either (it did: a
    KeyError escaped the record factory). A plain stream handler, not pytest's (which raises)."""
    monkeypatch.setattr(logging, "raiseExceptions", True)
    value = _token()
    logger = logging.getLogger(f"lfharness.test.unfit.{call}")
    monkeypatch.setattr(logger, "propagate", False)
    logger.addHandler(handler := logging.StreamHandler(io.StringIO()))
    undo = redact.install_record_masking(redact.Redactor([value]))
    message = "two %s %s" if call == "positional" else "%(a)s %(b)s"
    try:
        if call == "positional":
            logger.warning(message, value)
        else:
            logger.warning(message, {"a": value})
    finally:
        undo()
        logger.removeHandler(handler)
    err = capsys.readouterr().err
    arguments = [line for line in err.splitlines() if line.startswith("Arguments: ")]
    assert value not in err
    assert (f"Message: {message!r}" in err, len(arguments), "***" in "".join(arguments)) == (True, 1, True)


# GitHub Actions' ::add-mask:: lines.

def test_under_github_actions_a_redactor_without_an_announcer_writes_add_mask_to_stdout(monkeypatch, capsys):
    """NFR1: the stack makes its own Redactor when none is handed to it: under GitHub Actions its new
    values reach the runner as `::add-mask::` lines on stdout."""
    monkeypatch.setenv(redact.GITHUB_ACTIONS_ENV, "true")
    value = secrets.token_hex(16)
    redact.Redactor([value])
    assert value in _runner_masks(capsys.readouterr().out)


def test_under_github_actions_a_one_line_secret_is_announced_as_itself(monkeypatch):
    """NFR1: a one-line secret is registered with the runner character for character, blanks
    around it included, not trimmed into another (and here too short) value."""
    monkeypatch.setenv(redact.GITHUB_ACTIONS_ENV, "true")
    out = io.StringIO()
    value = "  " + secrets.token_hex(5)
    redact.Redactor([value], announce=lambda v: redact._announce_to_stdout(v, out))
    assert value in _runner_masks(out.getvalue())


def test_under_github_actions_short_lines_of_a_multi_line_secret_are_not_announced(monkeypatch):
    """NFR1: the runner masks every occurrence of a registered value in the step log: a short line of
    a multi-line secret (a PEM body's last line) registered alone would mask that text everywhere.
    Lines under MIN_LENGTH are left out; the others are registered."""
    monkeypatch.setenv(redact.GITHUB_ACTIONS_ENV, "true")
    out = io.StringIO()
    body = [secrets.token_hex(32), secrets.token_hex(32), "ab=="]
    redact.Redactor(["\n".join(body) + "\n"], announce=lambda v: redact._announce_to_stdout(v, out))
    masks = _runner_masks(out.getvalue())
    assert (set(body[:2]) <= masks, sorted(m for m in masks if len(m) < redact.MIN_LENGTH)) == (True, [])
