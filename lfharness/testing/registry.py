"""Local module-registry stand-in over git clones, and the Terraform CLI config for offline runs.

Terraform resolves the unchanged `source = "terraform-aws-modules/..."` strings through a `host`
block naming this server's modules.v1 endpoint: versions (the clone's `vX.Y.Z` tags) -> download
(X-Terraform-Get) -> a tarball of that tag, packed on first use into the cache. Providers come
from the filesystem mirror built by the set-up.

The clones come from ``LFK8S_MODULE_MIRROR``: a folder holding one git clone (bare or not) per
module repository, named ``terraform-<system>-<name>`` under a folder named after the namespace,
or with the namespace as a prefix (``<namespace>+terraform-<system>-<name>``, optionally with the
git directory in a ``repo`` subfolder). Nothing of a clone is ever copied into the project.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import tarfile
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import TracebackType
from typing import Self

from lfharness.testing import httpserver, toolchain
from lfharness.testing.localca import CaFiles

LOG = logging.getLogger("lfharness.testing.registry")

MIRROR_ENV = toolchain.MIRROR_ENV
# Folders of a module repository that Terraform never loads when a workspace calls the module
# (or one of its modules/ subfolders). A clone may lack their large blobs.
_NOT_LOADED = ("examples/", "tests/", "test/", "docs/", "wrappers/", ".github/", "assets/")
_TAG = re.compile(r"v?(\d+\.\d+\.\d+)")


class MirrorError(RuntimeError):
    """A module the mirror cannot serve: says which clone was looked for and what is wrong."""


@dataclass(frozen=True)
class ModuleRef:
    namespace: str
    name: str
    system: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}/{self.system}"

    @property
    def repository(self) -> str:
        return f"terraform-{self.system}-{self.name}"

    @classmethod
    def from_source(cls, source: str) -> ModuleRef:
        namespace, name, system = source.split("//")[0].split("/")
        return cls(namespace, name, system)


class ModuleMirror:
    """The git clones under one folder, and the tarballs packed from their tags."""

    def __init__(self, root: Path, cache: Path) -> None:
        if not root.is_dir():
            raise MirrorError(f"{MIRROR_ENV}={root} is not a folder")
        self.root = root
        self.cache = cache / "modules"

    @classmethod
    def from_env(cls) -> ModuleMirror | None:
        value = os.environ.get(MIRROR_ENV)
        return cls(Path(value), toolchain.cache_dir()) if value else None

    def git_dir(self, ref: ModuleRef) -> Path | None:
        """The clone of a module repository, or None when the mirror does not hold it."""
        for folder in (self.root / f"{ref.namespace}+{ref.repository}", self.root / ref.namespace / ref.repository,
                       self.root / ref.repository):
            for candidate in (folder / "repo" / ".git", folder / "repo", folder / ".git", folder):
                if (candidate / "HEAD").is_file() and (candidate / "objects").is_dir():
                    return candidate
        return None

    def _git(self, git_dir: Path, *args: str, binary: bool = False) -> str | bytes:
        proc = subprocess.run(["git", f"--git-dir={git_dir}", *args], capture_output=True, check=False,
                              timeout=120)
        if proc.returncode != 0:
            raise MirrorError(f"git {' '.join(args)} in {git_dir} failed: {proc.stderr.decode().strip()}")
        return proc.stdout if binary else proc.stdout.decode()

    def versions(self, ref: ModuleRef) -> list[str]:
        git_dir = self.git_dir(ref)
        if git_dir is None:
            return []
        tags = str(self._git(git_dir, "tag", "--list")).split()
        return sorted({m.group(1) for t in tags if (m := _TAG.fullmatch(t))},
                      key=lambda v: tuple(int(p) for p in v.split(".")))

    def archive(self, ref: ModuleRef, version: str) -> Path:
        """A tar.gz of the module at `version`, packed once from the clone's tag."""
        target = self.cache / ref.namespace / ref.name / ref.system / f"{version}.tar.gz"
        if target.exists():
            return target
        git_dir = self.git_dir(ref)
        if git_dir is None:
            raise MirrorError(f"{self.root} holds no clone of {ref.repository} ({ref.key})")
        tag = next((t for t in (f"v{version}", version)
                    if subprocess.run(["git", f"--git-dir={git_dir}", "rev-parse", "--verify", "-q", f"{t}^{{commit}}"],
                                      capture_output=True, check=False).returncode == 0), None)
        if tag is None:
            raise MirrorError(f"{git_dir} has no tag v{version} of {ref.key}")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        with tarfile.open(partial, "w:gz") as tar:
            for mode, path, body in self._files(git_dir, tag):
                info = tarfile.TarInfo(path)
                info.size, info.mode = len(body), 0o755 if mode == "100755" else 0o644
                tar.addfile(info, io.BytesIO(body))
        partial.rename(target)  # atomic: an interrupted run leaves no half archive
        LOG.info("module %s %s packed from %s", ref.key, version, git_dir)
        return target

    def _files(self, git_dir: Path, tag: str) -> list[tuple[str, str, bytes]]:
        listing = str(self._git(git_dir, "ls-tree", "-r", "-z", tag)).split("\0")
        entries = []
        for line in filter(None, listing):
            meta, path = line.split("\t", 1)
            mode, kind, sha = meta.split()
            if kind == "blob" and not path.startswith(_NOT_LOADED) and mode != "120000":
                entries.append((mode, path, sha))
        proc = subprocess.run(["git", f"--git-dir={git_dir}", "cat-file", "--batch"], check=False, timeout=120,
                              input="".join(f"{sha}\n" for _, _, sha in entries).encode(), capture_output=True)
        out, pos, files = proc.stdout, 0, []
        for mode, path, sha in entries:
            end = out.index(b"\n", pos)
            header = out[pos:end].decode().split()
            if header[-1] == "missing":
                raise MirrorError(f"{git_dir}: {path} at {tag} is missing from the clone (blob {sha}); "
                                  "fetch the repository again")
            size = int(header[2])
            files.append((mode, path, out[end + 1:end + 1 + size]))
            pos = end + 1 + size + 1
        return files


class _Handler(BaseHTTPRequestHandler):
    server: httpserver.Server  # its state is the ModuleRegistry

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's signature)
        LOG.debug("registry: " + format, *args)

    def do_GET(self) -> None:  # http.server dispatches on do_<METHOD>
        registry: ModuleRegistry = self.server.state
        registry.answer(self)


class ModuleRegistry:
    """HTTPS module registry (modules.v1) over a ModuleMirror, on a free loopback port."""

    def __init__(self, mirror: ModuleMirror, ca: CaFiles) -> None:
        self.mirror = mirror
        self.ca = ca
        self._server = httpserver.LocalServer(_Handler, self, tls=httpserver.tls_context(ca.cert, ca.key),
                                              name="module-registry")

    @property
    def base_url(self) -> str:
        return self._server.url

    def __enter__(self) -> Self:
        self._server.start()
        LOG.info("module registry stand-in at %s serving clones under %s", self.base_url, self.mirror.root)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.stop()

    def answer(self, req: BaseHTTPRequestHandler) -> None:
        """Answer one GET: the module's versions, its download redirect, or the archive itself."""
        path = req.path.split("?")[0]
        try:
            if m := re.fullmatch(r"/v1/modules/([\w-]+)/([\w-]+)/([\w-]+)/versions", path):
                ref = ModuleRef(*m.groups())
                versions = self.mirror.versions(ref)
                if not versions:
                    missing = f"{MIRROR_ENV} holds no clone of {ref.repository}"
                    return httpserver.send_json(req, 404, {"errors": [missing]})
                return httpserver.send_json(req, 200, {"modules": [{"versions": [{"version": v} for v in versions]}]})
            if m := re.fullmatch(r"/v1/modules/([\w-]+)/([\w-]+)/([\w-]+)/([\w.+-]+)/download", path):
                *parts, version = m.groups()
                if version not in self.mirror.versions(ModuleRef(*parts)):
                    return httpserver.send_json(req, 404, {"errors": [f"no tag v{version} in the clone"]})
                archive = f"{self.base_url}/archives/{'/'.join(parts)}/{version}.tar.gz"
                return httpserver.send_bytes(req, 204, None, headers={"X-Terraform-Get": archive})
            if m := re.fullmatch(r"/archives/([\w-]+)/([\w-]+)/([\w-]+)/([\w.+-]+)\.tar\.gz", path):
                *parts, version = m.groups()
                data = self.mirror.archive(ModuleRef(*parts), version).read_bytes()
                return httpserver.send_bytes(req, 200, data, "application/x-gzip")
        except MirrorError as exc:
            LOG.error("module registry stand-in: %s", exc)
            return httpserver.send_json(req, 500, {"errors": [str(exc)]})
        return httpserver.send_json(req, 404, {"errors": ["not found"]})


def write_cli_config(dest: Path, cache: Path, registry_url: str | None) -> Path:
    """A CLI config for offline runs.

    Offline: every hashicorp provider from the filesystem mirror (built ones and the stand-in),
    modules from the registry stand-in when one runs. With a reachable registry, only the
    stand-in's providers come from the mirror; everything else installs as usual.
    """
    online = toolchain.load_manifest(cache).get("path") == "online"
    host = toolchain.REGISTRY_HOST
    include = [f"{host}/hashicorp/{name}" for name in toolchain.STANDIN_PROVIDERS] if online \
        else [f"{host}/hashicorp/*"]
    text = (
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f"    path    = {json.dumps(str(toolchain.mirror_dir(cache)))}\n"
        f"    include = {json.dumps(include)}\n"
        "  }\n"
        + ("  direct {\n" f"    exclude = {json.dumps(include)}\n" "  }\n" if online else "")
        + "}\n"
    )
    if registry_url:
        text += (
            f"\nhost \"{host}\" {{\n"
            f"  services = {{\n    \"modules.v1\" = \"{registry_url}/v1/modules/\"\n  }}\n}}\n"
        )
    dest.write_text(text)
    return dest
