"""The storefront HTTP client: pooled, signed, with timeouts, retries and a circuit breaker. Pure Python.

Retries use urllib3's ``Retry`` (exponential backoff with jitter, ``Retry-After`` honoured on 429/503,
capped so that a storefront asking for an hour's pause cannot park a worker). Every call we make is
idempotent on the storefront side (each change carries a per-key version), so POSTs are retried too.

The circuit breaker stops a worker from hammering a storefront that is down: after ``failure_threshold``
consecutive failures the circuit opens for ``cooldown`` seconds, then one trial call is let through. Its
state lives in a pluggable store so that the workers of one site share it (the push layer passes a
Redis-backed store; tests and the reference tools use the in-memory default).
"""

import json
import time
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ecommerce_bridge.contract.signing import SIGNATURE_HEADER, sign

USER_AGENT = "ecommerce-bridge/1"


class StorefrontError(Exception):
	"""The storefront could not be reached or refused a call. Never carries credentials."""

	def __init__(self, message: str, status_code: int | None = None, body=None):
		super().__init__(message)
		self.status_code = status_code
		self.body = body


class CircuitOpenError(StorefrontError):
	"""Calls are paused because the storefront failed repeatedly; they resume by themselves."""


class _CappedRetry(Retry):
	"""``Retry`` that honours ``Retry-After`` but never sleeps longer than ``max_retry_after`` seconds."""

	max_retry_after = 10.0

	def get_retry_after(self, response):
		value = super().get_retry_after(response)
		return None if value is None else min(value, self.max_retry_after)


class MemoryStore:
	"""Process-local state for the circuit breaker."""

	def __init__(self):
		self._data = {}

	def get(self) -> dict:
		return dict(self._data)

	def set(self, value: dict) -> None:
		self._data = dict(value)


@dataclass
class CircuitBreaker:
	failure_threshold: int = 5
	cooldown: float = 30.0
	store: object = None

	def __post_init__(self):
		self.store = self.store or MemoryStore()

	def allow(self, now: float | None = None) -> bool:
		now = now or time.time()
		state = self.store.get()
		if now < float(state.get("open_until") or 0):
			return False
		if int(state.get("failures") or 0) >= self.failure_threshold:
			# Half-open: this caller makes the one trial call; the others wait another cooldown.
			self.store.set({**state, "open_until": now + self.cooldown})
		return True

	def retry_at(self) -> float:
		return float(self.store.get().get("open_until") or 0)

	def record_success(self) -> None:
		if self.store.get():
			self.store.set({})

	def record_failure(self, now: float | None = None) -> None:
		state = self.store.get()
		failures = int(state.get("failures") or 0) + 1
		open_until = state.get("open_until") or 0
		if failures >= self.failure_threshold:
			open_until = (now or time.time()) + self.cooldown
		self.store.set({"failures": failures, "open_until": open_until})


def make_session(retries: int = 3, backoff_factor: float = 0.3, pool_size: int = 10) -> requests.Session:
	retry = _CappedRetry(
		total=retries,
		connect=retries,
		read=retries,
		status=retries,
		backoff_factor=backoff_factor,
		backoff_max=8,
		backoff_jitter=0.25,
		status_forcelist=(429, 500, 502, 503, 504),
		allowed_methods=frozenset({"GET", "POST", "PUT", "DELETE"}),
		respect_retry_after_header=True,
		raise_on_status=False,
	)
	session = requests.Session()
	adapter = HTTPAdapter(max_retries=retry, pool_connections=pool_size, pool_maxsize=pool_size)
	session.mount("http://", adapter)
	session.mount("https://", adapter)
	session.headers["User-Agent"] = USER_AGENT
	return session


class StorefrontClient:
	def __init__(
		self,
		base_url: str,
		api_token: str | None,
		signing_secret: str,
		connect_timeout: float = 3.05,
		read_timeout: float = 20.0,
		session: requests.Session | None = None,
		breaker: CircuitBreaker | None = None,
	):
		self.base_url = base_url.rstrip("/")
		self._api_token = api_token
		self._signing_secret = signing_secret
		self.timeout = (connect_timeout, read_timeout)
		self.session = session or make_session()
		self.breaker = breaker or CircuitBreaker()

	def __repr__(self) -> str:
		return f"<StorefrontClient {self.base_url}>"

	def get(self, path: str, params: dict | None = None) -> dict:
		return self._request("GET", path, params=params)

	def pages(self, path: str, key: str, params: dict | None = None):
		"""Every entry of a paged listing (``{key: [...], "next_cursor": ...}``), page after page."""
		cursor = None
		while True:
			page = self.get(path, params={**(params or {}), **({"cursor": cursor} if cursor else {})})
			yield from page.get(key) or []
			cursor = page.get("next_cursor")
			if not cursor:
				return

	def post(self, path: str, payload) -> dict:
		return self._request("POST", path, payload=payload)

	def _request(self, method: str, path: str, payload=None, params=None) -> dict:
		if not self.breaker.allow():
			raise CircuitOpenError(
				"The storefront failed repeatedly; calls are paused until "
				+ time.strftime("%H:%M:%S", time.localtime(self.breaker.retry_at()))
			)
		body = b"" if payload is None else json.dumps(payload, separators=(",", ":"), default=str).encode()
		headers = {SIGNATURE_HEADER: sign(self._signing_secret, body), "Accept": "application/json"}
		if payload is not None:
			headers["Content-Type"] = "application/json"
		if self._api_token:
			headers["Authorization"] = f"Bearer {self._api_token}"
		url = self.base_url + path
		try:
			response = self.session.request(
				method, url, data=body or None, params=params, headers=headers, timeout=self.timeout
			)
		except requests.RequestException as exc:
			self.breaker.record_failure()
			raise StorefrontError(
				f"{method} {path}: the storefront could not be reached ({type(exc).__name__})"
			) from None

		data = _json_or_text(response)
		if response.status_code >= 500 or response.status_code == 429:
			self.breaker.record_failure()
		else:
			self.breaker.record_success()
		if response.status_code >= 400:
			raise StorefrontError(
				f"{method} {path}: the storefront answered HTTP {response.status_code}",
				status_code=response.status_code,
				body=data,
			)
		return data


def _json_or_text(response: requests.Response):
	try:
		return response.json()
	except ValueError:
		return {"text": response.text[:2000]}
