"""Stripe-style request signatures shared by both directions.

A request carries ``X-Bridge-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`` where the HMAC is taken
with the shared signing secret over ``f"{t}.{raw_body}"``. Binding the timestamp into the MAC lets the
receiver refuse replays outside a tolerance window without keeping state.
"""

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Bridge-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


class SignatureError(Exception):
	"""The request's signature is missing, malformed, wrong or too old. The message never holds the secret."""


def _mac(secret: str, timestamp: int, body: bytes) -> str:
	message = str(timestamp).encode() + b"." + body
	return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
	"""The header value that authenticates ``body``."""
	if not secret:
		raise SignatureError("no signing secret is configured")
	timestamp = int(time.time()) if timestamp is None else int(timestamp)
	return f"t={timestamp},v1={_mac(secret, timestamp, body)}"


def verify(
	secret: str,
	body: bytes,
	header: str | None,
	tolerance: int = DEFAULT_TOLERANCE_SECONDS,
	now: float | None = None,
) -> int:
	"""Check ``header`` against ``body``; return the signed timestamp or raise SignatureError."""
	if not secret:
		raise SignatureError("no signing secret is configured on the receiving side")
	if not header:
		raise SignatureError(f"the {SIGNATURE_HEADER} header is missing")

	timestamp, candidates = None, []
	for part in header.split(","):
		key, sep, value = part.strip().partition("=")
		if not sep:
			continue
		if key == "t" and value.isascii() and value.isdigit():
			timestamp = int(value)
		elif key == "v1":
			candidates.append(value)
	if timestamp is None or not candidates:
		raise SignatureError(f"the {SIGNATURE_HEADER} header must look like t=<unix>,v1=<hex>")

	now = time.time() if now is None else now
	if abs(now - timestamp) > tolerance:
		raise SignatureError("the signature timestamp is outside the allowed window (replayed or clock skew)")

	expected = _mac(secret, timestamp, body)
	# Every candidate is compared, in constant time, so timing reveals nothing about which one matched.
	matched = False
	for candidate in candidates:
		matched |= hmac.compare_digest(expected, candidate)
	if not matched:
		raise SignatureError("the signature does not match the body")
	return timestamp
