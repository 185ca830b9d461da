"""A stand-in for `kubectl port-forward`: listens on the local port it is given and holds it until
stopped, writing its pid where $LFK8S_STANDIN_PID_FILE says (for tests that check it is gone).

`python -m lfharness.testing.portforward_standin [kubectl arguments ...] <local>:<remote>`: every
argument but the last is ignored, as a kubectl binary would be called by lfharness.stack.k8s.Kubectl.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    local = int(argv[-1].split(":", 1)[0])
    with socket.create_server(("127.0.0.1", local)) as server:
        pid_file = os.environ.get("LFK8S_STANDIN_PID_FILE")
        if pid_file:
            Path(pid_file).write_text(str(os.getpid()))
        while True:  # accept and drop connections until a signal ends the process
            connection, _ = server.accept()
            connection.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
