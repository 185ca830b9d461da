"""How long the harness's long operations may take: what temporary AWS credentials must outlive
(issue 15 defect 6, Settings.require_lifetime).

Upper estimates in seconds, built from what the harness waits for. They err long: refusing a run
that would have fitted costs a fresh session; starting one that cannot end leaves a half-applied
stack nobody can tear down until new credentials arrive.
"""

from __future__ import annotations

import inspect

from lfharness.core import tf
from lfharness.stack import clickhouse
from lfharness.stack.stack import Stack
from lfharness.stack.workspaces import CLUSTER_WORKSPACE, REGISTRY

# One apply per workspace, each entry's apply_budget (the registry says what each waits for).
APPLY: dict[str, float] = {w.folder: w.apply_budget for w in REGISTRY}

# The quiesce before 03-app goes (decision 24): the queues drained, then worker and ClickHouse stopped.
QUIESCE: float = clickhouse.DRAIN_TIMEOUT + 2 * clickhouse.STOP_TIMEOUT

# Pause: the quiesce, 03-app uninstalls (5 min), the PVC volumes go (pause.wait_for_pvc_volumes_gone:
# up to 600 s), 02-deps drops the node rule and IRSA role (5 min), 01-network deletes EKS (15-20 min),
# then the paused check (pause.check_paused: up to 600 s).
PAUSE: float = QUIESCE + 5 * 60 + 600 + 5 * 60 + 20 * 60 + 600

# Resume: the three applies, the wait for a Ready node in the zone of ClickHouse's volume
# (clickhouse.placement_problem: up to 300 s), then Langfuse's health through a port-forward
# (pause.resume: up to 900 s).
RESUME: float = sum(APPLY.values()) + 300 + 900

# `up` from nothing: the three applies, the zone wait and the health check, as a resume.
UP: float = RESUME

# The e2e workflow's job (.github/workflows/e2e.yml), whole: the suite's session fixture refuses
# temporary credentials that would not outlive it (issue 24 item 6), not only its test step. Every
# step has its own timeout-minutes and the job's is their sum plus 5 for the post-job steps:
# checkout and the Python and Go set-up actions 5 each, the .env step 1, setup.sh 30, the test step
# 200 (the ordered suite, deploy to its own teardown, is 2.5-3.5 h by the stage estimates), then the
# steps a cancel leaves 5 minutes for: the .runs/ upload and the status report, 2 each. The real
# teardown after a failed or cancelled run is the e2e-teardown workflow's, with its own check
# (TEARDOWN). tests/unit/test_credentials_lifetime.py reads the figures back from the workflow.
E2E_JOB_MINUTES: int = 5 + 5 + 5 + 1 + 30 + 200 + 2 + 2 + 5
E2E_SUITE: float = E2E_JOB_MINUTES * 60

# `python -m lfharness teardown` (stack.teardown_workspaces), everything it may wait for, in order:
# a Terraform a killed run left behind in this checkout (tf.LIVE_WAIT, then one SIGINT and
# tf.LIVE_GRACE before it is killed), the init, output and state reads of the three workspaces (5 min
# for all), one destroy per workspace taking at most as long as its apply (the registry's apply
# budgets: EKS and its nodes, RDS, the Helm release's timeout), the wait for the PVC volumes after
# 03-app and the leftover sweep (Stack's pvc_timeout and sweep_timeout, the ones the command uses),
# the wait for a cluster EKS still creates or updates (cluster_settle_timeout), and 01-network's
# destroy once more after the detached VPC CNI interfaces that held its security group are deleted.
# The command refuses temporary credentials that would expire before it could end; the
# e2e-teardown workflow's teardown step gives it at least this long (tests/unit/test_credentials_lifetime.py).
_STACK_WAITS = inspect.signature(Stack).parameters
# The live-wait's grace is the longest a workspace gets (03-app's covers the Helm release's timeout).
_LIVE_GRACE = max(tf.LIVE_GRACE, *(tf.grace_for(sub, ws) for ws in APPLY for sub in ("apply", "destroy")))
TEARDOWN: float = (tf.LIVE_WAIT + _LIVE_GRACE + 5 * 60 + sum(APPLY.values())
                   + _STACK_WAITS["pvc_timeout"].default + _STACK_WAITS["sweep_timeout"].default
                   + _STACK_WAITS["cluster_settle_timeout"].default + APPLY[CLUSTER_WORKSPACE])
