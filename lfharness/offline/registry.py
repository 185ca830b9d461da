"""Local module-registry stand-in and the Terraform CLI config that wires the offline mirror.

Terraform resolves the unchanged `source = "terraform-aws-modules/..."` strings through a
`host` block naming this server's modules.v1 endpoint: versions -> download (X-Terraform-Get)
-> tarball from the cache. Providers come from the filesystem mirror built by set-up.
"""

from __future__ import annotations

import json
import logging
import re
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from lfharness.offline import toolchain
from lfharness.offline.localca import CaFiles

LOG = logging.getLogger("lfharness.registry")


class ModuleRegistry:
    """HTTPS module registry over the cached tarballs, on a free loopback port."""

    def __init__(self, modules_dir: Path, ca: CaFiles) -> None:
        self.modules_dir = modules_dir
        self.ca = ca
        self._server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "registry not started"
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "ModuleRegistry":
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, fmt: str, *args: object) -> None:
                LOG.debug("registry: " + fmt, *args)

            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                registry._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca.cert, self.ca.key)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        LOG.info("module registry stand-in at %s serving %s", self.base_url, self.modules_dir)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        path = req.path.split("?")[0]
        if m := re.fullmatch(r"/v1/modules/([\w-]+)/([\w-]+)/([\w-]+)/versions", path):
            folder = self.modules_dir.joinpath(*m.groups())
            versions = sorted(p.name[: -len(".tar.gz")] for p in folder.glob("*.tar.gz"))
            if not versions:
                return _send(req, 404, {"errors": [f"module {'/'.join(m.groups())} is not in the offline cache"]})
            return _send(req, 200, {"modules": [{"versions": [{"version": v} for v in versions]}]})
        if m := re.fullmatch(r"/v1/modules/([\w-]+)/([\w-]+)/([\w-]+)/([\w.+-]+)/download", path):
            *parts, version = m.groups()
            if not self.modules_dir.joinpath(*parts, f"{version}.tar.gz").exists():
                return _send(req, 404, {"errors": ["version not in the offline cache"]})
            req.send_response(204)
            req.send_header("X-Terraform-Get", f"{self.base_url}/archives/{'/'.join(parts)}/{version}.tar.gz")
            req.end_headers()
            return None
        if m := re.fullmatch(r"/archives/([\w-]+)/([\w-]+)/([\w-]+)/([\w.+-]+\.tar\.gz)", path):
            file = self.modules_dir.joinpath(*m.groups())
            if file.exists():
                data = file.read_bytes()
                req.send_response(200)
                req.send_header("Content-Type", "application/x-gzip")
                req.send_header("Content-Length", str(len(data)))
                req.end_headers()
                req.wfile.write(data)
                return None
        return _send(req, 404, {"errors": ["not found"]})


def _send(req: BaseHTTPRequestHandler, status: int, body: dict) -> None:
    data = json.dumps(body).encode()
    req.send_response(status)
    req.send_header("Content-Type", "application/json")
    req.send_header("Content-Length", str(len(data)))
    req.end_headers()
    req.wfile.write(data)


def write_cli_config(dest: Path, cache: Path, registry_url: str | None) -> Path:
    """A CLI config: providers only from the mirror, modules from the stand-in registry.

    Where set-up found the public registry reachable, an empty config: init downloads as usual.
    """
    if toolchain.load_manifest(cache).get("path") == "online":
        dest.write_text("# registry reachable: terraform init downloads providers and modules itself\n")
        return dest
    text = (
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f"    path    = {json.dumps(str(toolchain.mirror_dir(cache)))}\n"
        f"    include = [\"{toolchain.REGISTRY_HOST}/hashicorp/*\"]\n"
        "  }\n"
        "}\n"
    )
    if registry_url:
        text += (
            f"\nhost \"{toolchain.REGISTRY_HOST}\" {{\n"
            f"  services = {{\n    \"modules.v1\" = \"{registry_url}/v1/modules/\"\n  }}\n}}\n"
        )
    dest.write_text(text)
    return dest
