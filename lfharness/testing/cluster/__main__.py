"""`python -m lfharness.testing.cluster build`: the local cluster's binaries into the project's cache
(setup.sh runs it when the kube tier is asked for).
`python -m lfharness.testing.cluster golden`: the kwok stages' expected files rewritten from the
stages as they render now, after a deliberate change to a stage (review the diff before committing).
"""

from __future__ import annotations

import sys

from lfharness.testing.cluster import binaries, kwok

USAGE = "usage: python -m lfharness.testing.cluster {build|golden}"


def main(argv: list[str]) -> int:
    if argv == ["build"]:
        return binaries.main(argv)
    if argv == ["golden"]:
        for path in kwok.write_golden():
            print(path)
        return 0
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
