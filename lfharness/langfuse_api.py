"""Langfuse public API: health, trace ingestion and read-back."""

from __future__ import annotations

import time
import uuid

import requests


def health(base_url: str, timeout: float = 10) -> requests.Response:
    return requests.get(f"{base_url}/api/public/health", timeout=timeout)


def ingestion_batch(trace_id: str, name: str = "e2e-trace") -> dict:
    """One trace-create event in the public ingestion API's batch format."""
    return {"batch": [{"id": str(uuid.uuid4()), "type": "trace-create",
                       "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                       "body": {"id": trace_id, "name": name}}]}


def send_trace(base_url: str, public_key: str, secret_key: str, trace_id: str, timeout: float = 30) -> requests.Response:
    """POST /api/public/ingestion with basic auth (public key : secret key); 207 on acceptance."""
    return requests.post(f"{base_url}/api/public/ingestion", json=ingestion_batch(trace_id),
                         auth=(public_key, secret_key), timeout=timeout)


def get_trace(base_url: str, public_key: str, secret_key: str, trace_id: str, timeout: float = 10) -> requests.Response:
    return requests.get(f"{base_url}/api/public/traces/{trace_id}", auth=(public_key, secret_key), timeout=timeout)
