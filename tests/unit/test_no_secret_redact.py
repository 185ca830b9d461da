"""The redaction mechanism itself (NFR1): what a `Redactor` masks, what it learns from a Terraform
state, the `Secret` string's repr, log-record masking and the GitHub Actions `::add-mask::` lines.
No stand-in: plain values and a `terraform show -json`-shaped document.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import logging
import secrets
from urllib.parse import quote
from xml.sax.saxutils import escape as xml_escape

import pytest

from lfharness.core import redact
from lfharness.stack import aws_checks

pytestmark = pytest.mark.static


def _value() -> str:
    return "s3cr3t-" + secrets.token_urlsafe(24)


def test_every_registered_secret_is_masked_wherever_it_appears():
    """NFR1: each registered value is replaced by *** anywhere in a text, the other text kept."""
    first, second = _value(), _value()
    redactor = redact.Redactor([first, second])
    assert redactor.mask(f"a={first} b={second}{first}.") == "a=*** b=******."


def test_a_secret_is_masked_in_its_json_url_and_base64_forms():
    """NFR1: metadata.values and -json output escape a secret, connection URLs encode it, Kubernetes
    Secret data holds it in base64: every form is masked."""
    value = 'pa"ss/wo\\rd+' + secrets.token_hex(8)
    redactor = redact.Redactor([value])
    forms = [json.dumps(value)[1:-1], quote(value, safe=""), base64.b64encode(value.encode()).decode()]
    assert [redactor.mask(f"<{form}>") for form in forms] == ["<***>"] * 3


def test_a_secret_learned_later_is_masked_from_then_on():
    """NFR1: secrets the harness learns at run time (an output read mid-run) are masked by the same
    redactor from the moment they are added."""
    redactor = redact.Redactor()
    late = _value()
    assert redactor.mask(late) == late
    redactor.add(late)
    assert redactor.mask(late) == "***"


def test_short_values_are_never_registered():
    """Terraform states hold ids such as "none" next to secrets: values under MIN_LENGTH are not masked."""
    redactor = redact.Redactor(["none", "x" * (redact.MIN_LENGTH - 1)])
    assert (len(redactor), redactor.mask("id = none")) == (0, "id = none")


def test_the_longest_secret_wins_when_one_contains_another():
    """NFR1: project_secret_key is "sk-lf-" + a random_password result; both registered, the whole
    key is masked, not just its tail."""
    inner = _value()
    redactor = redact.Redactor([inner, "sk-lf-" + inner])
    assert redactor.mask("key sk-lf-" + inner) == "key ***"


def test_the_redactor_repr_never_shows_a_value():
    """NFR1: a redactor in a traceback's arguments shows how many values it holds, never one."""
    value = _value()
    assert value not in repr(redact.Redactor([value]))


def test_a_secret_string_keeps_its_value_and_masks_its_repr():
    """NFR1: Secret works as the str it is (psycopg, f-strings), its repr and reprs of containers
    holding it (pytest's assertion messages, tracebacks) show ***."""
    value = _value()
    secret = redact.Redactor().secret(value)
    assert (secret == value, f"{secret}", str(secret)) == (True, value, value)
    assert value not in repr({"password": secret}) and value not in repr([secret])


def test_learn_wraps_and_registers_every_string_of_a_sensitive_output():
    """FR17, NFR1: a sensitive output may be a map: each of its strings is registered and wrapped."""
    redactor = redact.Redactor()
    inner = _value()
    learned = redactor.learn({"keys": [inner], "count": 3})
    assert isinstance(learned["keys"][0], redact.Secret) and learned["count"] == 3
    assert redactor.mask(inner) == "***"


def test_db_conn_repr_leaves_out_the_password():
    """NFR1: a failed `assert rds_migrations_applied(conn) > 100` shows DbConn(...) without the password."""
    value = _value()
    conn = aws_checks.DbConn(host="db.example.com", port=5432, user="langfuse", password=value, dbname="langfuse")
    assert value not in repr(conn) and value not in str(conn)
    assert dataclasses.replace(conn, port=1).password == value


def _state(encryption_hex: str, password: str, secret_key: str, token: str) -> dict:
    """A `terraform show -json` document shaped like 03-app's (random_id and random_password, a
    Kubernetes Secret, a sensitive output, a non-secret resource)."""
    return {"values": {
        "outputs": {"project_secret_key": {"sensitive": True, "value": secret_key},
                    "namespace": {"sensitive": False, "value": "langfuse-namespace"}},
        "root_module": {"resources": [
            {"address": "random_id.encryption_key", "type": "random_id", "mode": "managed",
             "values": {"hex": encryption_hex, "b64_std": base64.b64encode(bytes.fromhex(encryption_hex)).decode(),
                        "byte_length": 32}, "sensitive_values": {}},
            {"address": "random_password.salt", "type": "random_password", "mode": "managed",
             "values": {"result": password, "id": "none", "length": 64}, "sensitive_values": {"result": True}},
            {"address": "kubernetes_namespace_v1.langfuse[0]", "type": "kubernetes_namespace_v1", "mode": "managed",
             "values": {"id": "langfuse-namespace"}, "sensitive_values": {}},
        ], "child_modules": [{"resources": [
            {"address": "module.x.kubernetes_secret_v1.app", "type": "kubernetes_secret_v1", "mode": "managed",
             "values": {"data": {"TOKEN": token}, "metadata": [{"name": "langfuse-secrets"}]},
             "sensitive_values": {"data": True, "metadata": [{}]}}]}]}}}


def test_learn_state_registers_unmarked_random_ids_marked_values_and_sensitive_outputs():
    """NFR1: a destroy prints a random_id's hex in clear (the provider does not mark it sensitive);
    marked attributes (also in child modules) and sensitive outputs are secrets too."""
    encryption_hex, password, secret_key, token = secrets.token_hex(32), _value(), "sk-lf-" + _value(), _value()
    redactor = redact.Redactor()
    redactor.learn_state(_state(encryption_hex, password, secret_key, token))
    texts = [encryption_hex, base64.b64encode(bytes.fromhex(encryption_hex)).decode(), password, secret_key, token]
    assert [redactor.mask(t) for t in texts] == ["***"] * len(texts)


def test_learn_state_leaves_non_secret_values_readable():
    """Masking only what is secret keeps the run logs useful: resource ids and plain outputs stay."""
    redactor = redact.Redactor()
    redactor.learn_state(_state(secrets.token_hex(32), _value(), "sk-lf-" + _value(), _value()))
    assert redactor.mask("langfuse-namespace langfuse-secrets") == "langfuse-namespace langfuse-secrets"


def test_learn_state_takes_only_the_sensitive_upstream_outputs_of_tfe_outputs():
    """FR17, NFR1: tfe_outputs marks its whole `values` sensitive, non-secret outputs included
    (cluster_name, vpc_id): only those missing from nonsensitive_values are secrets."""
    password = _value()
    plain = {"cluster_name": "langfuse-cluster", "vpc_id": "vpc-0abc1234def567890"}
    state = {"values": {"root_module": {"resources": [
        {"address": "data.tfe_outputs.deps", "type": "tfe_outputs", "mode": "data",
         "values": {"values": {**plain, "rds_password": password}, "nonsensitive_values": plain},
         "sensitive_values": {"values": True}}]}}}
    redactor = redact.Redactor()
    redactor.learn_state(state)
    plain_text = "langfuse-cluster vpc-0abc1234def567890"
    assert redactor.mask(f"{password} {plain_text}") == f"*** {plain_text}"


def test_log_records_are_masked_with_secrets_learned_after_masking_was_installed(caplog):
    """NFR1: record masking reads the redactor when each record is made, so a secret learned mid-run
    is masked in the message, its arguments and the traceback."""
    redactor = redact.Redactor()
    undo = redact.install_record_masking(redactor)
    try:
        value = _value()
        redactor.add(value)
        logger = logging.getLogger("lfharness.test")
        with caplog.at_level(logging.INFO, logger="lfharness.test"):
            logger.info("connecting with %s", value)
            try:
                raise RuntimeError(f"refused {value}")
            except RuntimeError:
                logger.exception("failed")
    finally:
        undo()
    assert value not in caplog.text and "connecting with ***" in caplog.text


def test_under_github_actions_each_new_secret_is_announced_once_with_add_mask(monkeypatch):
    """NFR1: in a GitHub Actions job every new value gets one `::add-mask::` line, so the runner
    masks it in the step log from then on."""
    monkeypatch.setenv(redact.GITHUB_ACTIONS_ENV, "true")
    lines: list[str] = []
    value = secrets.token_hex(16)  # alphanumeric: its JSON and URL forms are itself
    redactor = redact.Redactor(announce=lines.append)
    redactor.add(value)
    redactor.add(value)
    assert lines == sorted({value, base64.b64encode(value.encode()).decode()})


def test_outside_github_actions_nothing_is_announced(monkeypatch):
    """NFR1: `::add-mask::` would print the value itself anywhere but in a GitHub Actions job."""
    monkeypatch.delenv(redact.GITHUB_ACTIONS_ENV, raising=False)
    out = io.StringIO()
    redact.Redactor([_value()], announce=lambda v: redact._announce_to_stdout(v, out))
    assert out.getvalue() == ""


def test_the_pieces_of_a_secret_cut_by_a_shortened_repr_are_masked():
    """NFR1: pytest and reprlib shorten a repr by cutting out its middle (`s[:i] + "..." + s[-j:]`);
    the secret's start before the ellipsis and its end after it are both masked."""
    value = _value()
    cut = f"{{'a': 'x', 'key': '{value}', 'b': 'y'}}"
    shortened = cut[:len(cut) // 2] + "..." + cut[-10:]
    assert redact.Redactor([value]).mask(shortened) == cut[:cut.index(value)] + "***..." + cut[-10:]


def test_words_next_to_an_ellipsis_that_are_no_piece_of_a_secret_stay():
    """Masking beside an ellipsis touches only pieces of a known secret: 'waiting...' stays."""
    assert redact.Redactor([_value()]).mask("waiting... done...") == "waiting... done..."


def _runner_masks(step_output: str) -> tuple[set[str], list[str]]:
    """What a GitHub Actions runner makes of a step's output: the values its `::add-mask::` lines
    register (the command data unescaped as the runner does: %0D, %0A, %25), and the other lines."""
    masks, shown = set(), []
    for line in step_output.splitlines():
        if line.startswith("::add-mask::"):
            masks.add(line.removeprefix("::add-mask::").replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%"))
        else:
            shown.append(line)
    return masks, shown


def test_under_github_actions_a_multi_line_secret_reaches_the_log_in_no_line(monkeypatch):
    """NFR1: a workflow command ends at its line's end, so a multi-line secret (a PEM key) printed as
    one `::add-mask::` would put its other lines into the step log; and the runner masks line by
    line. Every line of it is registered with the runner, and none is shown."""
    monkeypatch.setenv(redact.GITHUB_ACTIONS_ENV, "true")
    out = io.StringIO()
    body = [secrets.token_hex(32) for _ in range(3)]
    key = "\n".join(body) + "\n"  # shaped like a PEM body: generated lines, no key committed
    redact.Redactor([key], announce=lambda v: redact._announce_to_stdout(v, out))
    masks, shown = _runner_masks(out.getvalue())
    assert (set(body) <= masks, [line for line in shown if any(b in line for b in body)]) == (True, [])


def test_under_github_actions_a_secret_with_a_percent_sign_is_registered_as_itself(monkeypatch):
    """NFR1: the runner unescapes %25, %0D and %0A in a command's data, so a secret holding
    "%0A" or "%25" would register as another value: the announcement escapes "%"."""
    monkeypatch.setenv(redact.GITHUB_ACTIONS_ENV, "true")
    out = io.StringIO()
    value = "pass%0Aword/%25" + secrets.token_hex(8)  # "/": its URL form is no copy of it either
    redact.Redactor([value], announce=lambda v: redact._announce_to_stdout(v, out))
    assert value in _runner_masks(out.getvalue())[0]


def test_a_log_call_with_mismatched_arguments_does_not_raise_under_masking(monkeypatch):
    """A log call whose arguments do not fit its format is reported by logging's handler, as without
    masking; the record factory must not turn it into an exception at the call site (an error
    path's log line would end the run). A plain stream handler, not pytest's (which raises)."""
    monkeypatch.setattr(logging, "raiseExceptions", False)  # the handler's report would go to stderr
    logger = logging.getLogger("lfharness.test.mismatched")
    monkeypatch.setattr(logger, "propagate", False)
    logger.addHandler(handler := logging.StreamHandler(io.StringIO()))
    undo = redact.install_record_masking(redact.Redactor([_value()]))
    raised: list[BaseException] = []
    try:
        logger.warning("two %s %s", "one")
    except TypeError as exc:
        raised.append(exc)
    finally:
        undo()
        logger.removeHandler(handler)
    assert raised == []


def test_a_secret_is_masked_in_its_xml_escaped_forms():
    """NFR1: the junit XML escapes &, <, > (and " in attributes): a password holding them is masked
    there too."""
    value = 'pa&ss<wo>"rd' + secrets.token_hex(8)
    redactor = redact.Redactor([value])
    forms = [value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"),
             value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")]
    assert [redactor.mask(f"<{form}>") for form in forms] == ["<***>"] * 2


@pytest.mark.parametrize("shape", ["quote-and-backslash", "apostrophe-and-backslash", "both-quotes", "tab"])
def test_a_secret_is_masked_in_the_escaped_form_python_s_repr_prints(shape):
    """Issue 26 item 5, NFR1: pytest prints values with repr, which escapes a backslash and the
    quote it encloses with (and control characters); that form, raw and XML-escaped as junit
    writes it, is masked too (generated values shaped like a password with such characters)."""
    core = secrets.token_urlsafe(12)
    value = {"quote-and-backslash": f'{core}"\\x', "apostrophe-and-backslash": f"{core}'\\y",
             "both-quotes": f"{core}'\"z", "tab": f"{core}\tw"}[shape]
    r = redact.Redactor([value])
    printed = repr(value)[1:-1]
    junit = xml_escape(printed, {'"': "&quot;"})
    assert printed != value
    assert core not in r.mask(f"got {printed} in the diff; junit: {junit}")
