"""How long the harness's long operations may take: what temporary AWS credentials must outlive
(issue 15 defect 6, Settings.require_lifetime).

Upper estimates in seconds, built from what the harness waits for. They err long: refusing a run
that would have fitted costs a fresh session; starting one that cannot end leaves a half-applied
stack nobody can tear down until new credentials arrive.
"""

from __future__ import annotations

from lfharness.stack import clickhouse
from lfharness.stack.workspaces import REGISTRY

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

# The ordered e2e suite, deploy to teardown: the e2e workflow's test step stops at 200 minutes
# (.github/workflows/e2e.yml), the suite's own estimate is 2.5-3.5 h.
E2E_SUITE: float = 200 * 60
