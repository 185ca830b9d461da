"""Derive the chart facts the static tests read from the upstream values files (run by hand, never at test time).

The chart's and its subcharts' ``values.yaml`` are upstream source files, so they are not committed;
what the tests need from them is derived here into two small JSON files:

- ``langfuse-chart-1.5.19-value-keys.json``: the key tree each values file defines (every map kept,
  every other value replaced by its YAML type), so test_values_template can tell whether a key set in
  values.yaml.tpl exists in the chart or its subcharts.
- ``langfuse-chart-1.5.19-defaults.json``: the sizing defaults test_cost compares with the rate table's
  assumptions, read after the Langfuse chart's ``clickhouse`` / ``redis`` sections are merged over the
  Bitnami subcharts' defaults (what Helm does, and what the test did with the yaml files).

Usage, from the repository root, with a folder holding the three values files (the names below)::

    PYTHONPATH=. .venv/bin/python tests/data/reference/derive.py SOURCE_DIR [--out tests/data/reference] [--check]

``--check`` writes nothing and exits 1 when the committed files differ from what SOURCE_DIR gives.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import yaml

from lfharness.stack.cost import _merge

LOG = logging.getLogger("derive")

HERE = Path(__file__).resolve().parent
# The files as the README lists them: chart langfuse 1.5.19 (langfuse/langfuse-k8s, tag langfuse-1.5.19)
# and the two Bitnami subcharts its Chart.lock pins (bitnami/charts).
VALUES = {
    "langfuse": "langfuse-chart-1.5.19-values.yaml",
    "clickhouse": "bitnami-clickhouse-8.0.5-values.yaml",
    "redis": "bitnami-valkey-2.2.4-values.yaml",  # the Langfuse chart's `redis` key is Valkey
}
KEYS_FILE = "langfuse-chart-1.5.19-value-keys.json"
DEFAULTS_FILE = "langfuse-chart-1.5.19-defaults.json"
# The defaults test_cost compares, as paths into the merged subchart values (the shape of the rate
# table's assumptions.chart_defaults.values, so the test reads both the same way).
DEFAULT_PATHS = {
    "clickhouse": (("shards",), ("replicaCount",), ("persistence", "size"), ("zookeeper", "enabled"),
                   ("zookeeper", "replicaCount")),
    "redis": (("architecture",), ("primary", "persistence", "size"), ("replica", "replicaCount"),
              ("replica", "persistence", "size")),
}


def key_tree(node: Any) -> Any:
    """The keys of `node` without its values: maps stay maps (an empty map stays empty and a null stays
    null, since the test treats both as open to any key); any other value becomes its YAML type name."""
    if isinstance(node, dict):
        return {str(key): key_tree(value) for key, value in node.items()}
    if node is None:
        return None
    # bool before int: a YAML boolean is a Python bool, which is also an int.
    for kind, name in ((bool, "bool"), (int, "int"), (float, "float"), (str, "string"), (list, "list")):
        if isinstance(node, kind):
            return name
    return type(node).__name__


def _get(values: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = values
    for part in path:
        node = node[part]
    return node


def _put(target: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        target = target.setdefault(part, {})
    target[path[-1]] = value


def derive(source: Path) -> dict[str, dict[str, Any]]:
    """File name -> content for the two derived files, from the values files in `source`."""
    values = {name: yaml.safe_load((source / file).read_text()) for name, file in VALUES.items()}
    provenance = dict(VALUES)
    keys = {"derived_from": provenance, "by": "tests/data/reference/derive.py",
            "charts": {name: key_tree(tree) for name, tree in values.items()}}
    defaults: dict[str, Any] = {"derived_from": provenance, "by": "tests/data/reference/derive.py",
                                "merge": "the langfuse chart's clickhouse/redis sections over each subchart's values"}
    for sub, paths in DEFAULT_PATHS.items():
        # The parent chart's section for a subchart overrides that subchart's own defaults.
        merged = _merge(values[sub], values["langfuse"][sub])
        section: dict[str, Any] = {}
        for path in paths:
            _put(section, path, _get(merged, path))
        defaults[sub] = section
    return {KEYS_FILE: keys, DEFAULTS_FILE: defaults}


def _text(content: dict[str, Any]) -> str:
    # Sorted and one key per line: a regeneration shows as a readable diff.
    return json.dumps(content, indent=1, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path, help="folder holding " + ", ".join(VALUES.values()))
    parser.add_argument("--out", type=Path, default=HERE, help="where the JSON files go (default: beside this script)")
    parser.add_argument("--check", action="store_true", help="compare with the files in --out, write nothing")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    absent = [file for file in VALUES.values() if not (args.source / file).is_file()]
    if absent:
        LOG.error("%s lacks %s", args.source, ", ".join(absent))
        return 2
    stale = []
    for name, content in derive(args.source).items():
        path = args.out / name
        if args.check:
            if not path.exists() or path.read_text() != _text(content):
                stale.append(name)
            continue
        path.write_text(_text(content))
        LOG.info("wrote %s", path)
    if stale:
        LOG.error("differs from what %s gives: %s", args.source, ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
