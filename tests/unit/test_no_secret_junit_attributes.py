"""No secret in the junit XML's attributes and properties (NFR1, issue 14 item 3).

`record_xml_attribute` and `record_testsuite_property` write straight into junit's XML, past every
report a plugin can mask. A generated test file records a registered secret both ways and is run
by the project's pytest in a subprocess with the junit family that writes such attributes
(`legacy`). No stand-in: plain values.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import lfharness

pytestmark = pytest.mark.static

ROOT = Path(lfharness.__file__).resolve().parent.parent

GENERATED = '''
import os


def test_records_a_secret_as_attribute_and_property(redactor, record_xml_attribute, record_testsuite_property):
    value = os.environ["T_SECRET"]
    redactor.add(value)
    record_xml_attribute("endpoint_token", value)
    record_testsuite_property("token", value)
'''


def test_junit_attributes_and_suite_properties_hold_no_secret(tmp_path):
    """NFR1: a secret written through record_xml_attribute or record_testsuite_property is masked in the
    junit XML, which still carries the attribute and the property (so the search could fail)."""
    test_file = tmp_path / "test_generated_attributes.py"
    test_file.write_text(textwrap.dedent(GENERATED))
    junit = tmp_path / "junit.xml"
    value = secrets.token_hex(24)
    env = {**os.environ, "T_SECRET": value, "PYTHONPATH": str(ROOT)}
    env.pop("GITHUB_ACTIONS", None)  # ::add-mask:: lines print the value itself (for the runner)
    argv = [str(Path(sys.executable).parent / "pytest"), "-c", str(ROOT / "pytest.ini"), "--rootdir", str(ROOT),
            "-p", "lfharness.testing.pytest_redact", "-p", "no:cacheprovider", "-o", "junit_family=legacy",
            f"--junitxml={junit}", str(test_file)]
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    xml = junit.read_text() if junit.exists() else ""
    assert (done.returncode, 'endpoint_token="' in xml, 'name="token"' in xml, value in xml) == (0, True, True, False)
