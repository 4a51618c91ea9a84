"""The storefront's side of storefront -> ERPNext calls: one signed JSON request to a whitelisted method.

The body is serialised once and those exact bytes are both signed and sent, because the receiver verifies
the HMAC over the raw body it reads. Pure Python (requests), no frappe.
"""

import json

import requests

from ecommerce_bridge.contract.signing import SIGNATURE_HEADER, sign


def send_signed(
	url: str,
	secret: str,
	payload,
	token: str | None = None,
	timeout: float = 10,
	*,
	method: str = "POST",
	params: dict | None = None,
) -> tuple[int, object]:
	"""Send ``payload`` as a signed JSON body; return ``(status_code, decoded JSON)``.

	``payload=None`` sends an empty body (signed as such), which is how ``GET ...order_status`` is called.
	``token`` is a Frappe API credential ``"api_key:api_secret"``, sent as ``Authorization: token ...``.
	Network failures propagate as ``requests.RequestException``; a non-JSON answer comes back as
	``{"text": <first 2000 characters>}``.
	"""
	body = b"" if payload is None else json.dumps(payload, separators=(",", ":"), default=str).encode()
	headers = {SIGNATURE_HEADER: sign(secret, body), "Accept": "application/json"}
	if payload is not None:
		headers["Content-Type"] = "application/json"
	if token:
		headers["Authorization"] = f"token {token}"
	response = requests.request(
		method, url, data=body or None, params=params, headers=headers, timeout=timeout
	)
	try:
		data = response.json()
	except ValueError:
		data = {"text": response.text[:2000]}
	return response.status_code, data
