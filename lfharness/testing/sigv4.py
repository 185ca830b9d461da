"""What AWS computes to check a SigV4 presigned URL, written from AWS's published signing steps
(canonical request, string to sign, derived key), without botocore: the tests compare the signature
that the harness got from botocore with the one a server recomputes from the request it receives."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qsl, quote, urlsplit

# The body of a GET: the server hashes the (empty) payload it received.
EMPTY_PAYLOAD_SHA256 = hashlib.sha256(b"").hexdigest()


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def expected_signature(url: str, *, method: str, secret_key: str, headers: dict[str, str]) -> str:
    """The X-Amz-Signature a server accepts for `method` on this presigned `url`, with `headers` (other
    than host) sent as the request's headers."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    params = dict(query)
    signed = params["X-Amz-SignedHeaders"].split(";")
    sent = {"host": parts.netloc, **{name.lower(): value for name, value in headers.items()}}
    missing = [name for name in signed if name not in sent]
    if missing:
        raise ValueError(f"the URL signs headers the request does not send: {missing}")
    canonical_query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
                               for k, v in sorted(query) if k != "X-Amz-Signature")
    canonical_headers = "".join(f"{name}:{sent[name].strip()}\n" for name in signed)
    canonical_request = "\n".join([method, parts.path or "/", canonical_query, canonical_headers,
                                   ";".join(signed), EMPTY_PAYLOAD_SHA256])
    _, date, region, service, terminator = params["X-Amz-Credential"].split("/")
    scope = f"{date}/{region}/{service}/{terminator}"
    string_to_sign = "\n".join([params["X-Amz-Algorithm"], params["X-Amz-Date"], scope,
                                hashlib.sha256(canonical_request.encode()).hexdigest()])
    key = ("AWS4" + secret_key).encode()
    for part in (date, region, service, terminator):
        key = _hmac(key, part)
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
