"""Verify a Mira webhook delivery with Python (>= 3.9) and its standard library only.

Pass the raw request body as bytes: in Flask, request.get_data(); in Django, request.body.
"""
import base64
import binascii
import hashlib
import hmac
import os
import sys
import time


def verify_mira_signature(secret: str, body: bytes, signature: str) -> bool:
    """X-Mira-Signature: lowercase hex HMAC-SHA256 of the raw body, keyed with the
    signing secret string exactly as stored in the Secret ("whsec_" prefix included)."""
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), (signature or "").encode())


def verify_webhook_signature(secret: str, headers, body: bytes, tolerance: int = 300) -> bool:
    """webhook-signature (Standard Webhooks): space-separated "v1,<base64>" entries,
    HMAC-SHA256 over "<webhook-id>.<webhook-timestamp>.<raw body>", keyed with the
    base64-decoded part of the secret after "whsec_". Any matching v1 entry passes
    (during a secret rotation there is one per secret); stale timestamps do not."""
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not msg_id or not timestamp or not signatures or not timestamp.isascii() or not timestamp.isdigit():
        return False
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    for entry in signatures.split(" "):
        version, _, sig = entry.partition(",")
        if version != "v1":
            continue
        try:
            got = base64.b64decode(sig, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(got, expected):
            return True
    return False


# Command line: MIRA_SIGNING_SECRET=whsec_… X_MIRA_SIGNATURE=… WEBHOOK_ID=… \
#   WEBHOOK_TIMESTAMP=… WEBHOOK_SIGNATURE=… python3 verify.py < body.json
if __name__ == "__main__":
    body = sys.stdin.buffer.read()
    env = os.environ
    mira = verify_mira_signature(env.get("MIRA_SIGNING_SECRET", ""), body, env.get("X_MIRA_SIGNATURE", ""))
    standard = verify_webhook_signature(env.get("MIRA_SIGNING_SECRET", ""), {
        "webhook-id": env.get("WEBHOOK_ID"),
        "webhook-timestamp": env.get("WEBHOOK_TIMESTAMP"),
        "webhook-signature": env.get("WEBHOOK_SIGNATURE"),
    }, body)
    print("X-Mira-Signature: " + ("ok" if mira else "rejected"))
    print("webhook-signature: " + ("ok" if standard else "rejected"))
    sys.exit(0 if mira and standard else 1)
