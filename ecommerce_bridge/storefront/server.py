"""The reference storefront: the storefront side of the contract as a real, threaded HTTP server.

It exists so that tests, demos and benchmarks exercise real HTTP, real signatures and the real versioning
rule instead of mocks. It is deliberately small and keeps everything in memory.

Contract endpoints (each needs a valid ``X-Bridge-Signature`` and, when an API token is configured,
``Authorization: Bearer <token>``):

- ``GET /health``
- ``POST /v1/products/batch``, ``POST /v1/inventory/batch``, ``POST /v1/customers/batch``,
  ``POST /v1/orders/status``: per-key versioned upserts; an entry whose version is not newer than the
  stored one is reported ``stale`` and changes nothing.
- ``GET /v1/orders?updated_since=&limit=&cursor=``: the catch-up feed of orders, oldest first.

The ``/_admin/...`` endpoints are unauthenticated and exist only for this reference server (tests and
demos); that is why it binds to loopback unless told otherwise. A real storefront has no such thing.

Run it with ``python -m ecommerce_bridge.storefront --port 8765 --secret S [--token T]``.
"""

import argparse
import base64
import binascii
import copy
import hmac
import ipaddress
import json
import logging
import os
import signal
import socket
import socketserver
import sys
import threading
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from ecommerce_bridge.contract.signing import SIGNATURE_HEADER, SignatureError, verify

logger = logging.getLogger(__name__)

SIGNATURE_TOLERANCE_SECONDS = 300
MAX_BATCH_ENTRIES = 1000
MAX_BODY_BYTES = 16 * 1024 * 1024
FEED_DEFAULT_LIMIT = 100
FEED_MAX_LIMIT = 500

# ERPNext owns these product fields; anything else on a record (description, images) belongs to the
# storefront and must survive every update from ERPNext.
PRODUCT_FIELDS = ("name", "item_group", "price", "currency", "uom", "disabled", "variant_of")
STOREFRONT_OWNED_PRODUCT_FIELDS = ("description", "images")
CUSTOMER_FIELDS = ("email", "first_name", "last_name", "phone", "addresses")
ORDER_STATUS_FIELDS = (
	"sales_order",
	"status",
	"billing_status",
	"grand_total",
	"paid_amount",
	"refunded_amount",
	"lines",
	"shipments",
)


class _BadRequest(Exception):
	def __init__(self, status: int, message: str):
		super().__init__(message)
		self.status = status
		self.message = message


class _EntryError(Exception):
	"""One batch entry is unusable; the rest of the batch still applies."""


def _version_of(entry: dict) -> int:
	version = entry.get("version")
	# bool is an int subclass; True must not pass for version 1.
	if isinstance(version, bool) or not isinstance(version, int) or version < 0:
		raise _EntryError("version must be a non-negative integer")
	return version


def _key_of(entry: dict, field: str) -> str:
	value = entry.get(field)
	if not isinstance(value, str) or not value.strip():
		raise _EntryError(f"{field} must be a non-empty string")
	return value


def _parse_time(value: str) -> datetime:
	"""An ISO 8601 timestamp as an aware datetime; naive values are taken as UTC."""
	text = str(value).strip()
	if text[-1:] in ("Z", "z"):
		text = text[:-1] + "+00:00"
	try:
		parsed = datetime.fromisoformat(text)
	except ValueError:
		# An unencoded "+01:00" in a query string arrives as " 01:00".
		head, sep, tail = text.rpartition(" ")
		if not sep or "T" not in head:
			raise
		parsed = datetime.fromisoformat(f"{head}+{tail}")
	if parsed.tzinfo is None:
		parsed = parsed.replace(tzinfo=timezone.utc)
	return parsed


def _encode_cursor(key: tuple[datetime, str]) -> str:
	raw = json.dumps([key[0].isoformat(), key[1]], separators=(",", ":")).encode()
	return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
	try:
		raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
		stamp, order_id = json.loads(raw)
		return _parse_time(stamp), str(order_id)
	except (binascii.Error, ValueError, TypeError):
		raise _BadRequest(400, "cursor is not one this storefront issued") from None


class _State:
	"""All storefront data behind one lock; every read hands out deep copies."""

	def __init__(self):
		self.lock = threading.RLock()
		self.clear()

	def clear(self):
		with self.lock:
			self.products: dict[str, dict] = {}
			# Last applied version per SKU, kept after a delete or rename as a tombstone.
			self.product_versions: dict[str, int] = {}
			self.inventory: dict[str, dict] = {}
			self.customers: dict[str, dict] = {}
			self.customer_ids: dict[str, str] = {}
			self.customer_versions: dict[str, int] = {}
			self.next_customer_number = 1
			self.order_status: dict[str, dict] = {}
			self.orders: dict[str, dict] = {}
			self.calls: list[dict] = []
			self.down: int | None = None

	# -- batch handlers: each returns one result per entry -------------------------------------------

	def apply_products(self, entries: list) -> list[dict]:
		with self.lock:
			return [self._one("sku", entry, self._apply_product) for entry in entries]

	def apply_inventory(self, entries: list) -> list[dict]:
		with self.lock:
			return [self._one("sku", entry, self._apply_inventory) for entry in entries]

	def apply_customers(self, entries: list) -> list[dict]:
		with self.lock:
			return [self._one("erp_customer", entry, self._apply_customer) for entry in entries]

	def apply_order_status(self, entries: list) -> list[dict]:
		with self.lock:
			return [self._one("order_id", entry, self._apply_order_status) for entry in entries]

	@staticmethod
	def _one(key_field: str, entry, apply) -> dict:
		key = entry.get(key_field) if isinstance(entry, dict) else None
		result = {key_field: key}
		try:
			if not isinstance(entry, dict):
				raise _EntryError("each entry must be a JSON object")
			result.update(apply(entry))
		except _EntryError as exc:
			result.update(status="error", error=str(exc))
		return result

	def _apply_product(self, entry: dict) -> dict:
		sku = _key_of(entry, "sku")
		version = _version_of(entry)
		renamed_from = entry.get("renamed_from")
		if renamed_from is not None and not isinstance(renamed_from, str):
			raise _EntryError("renamed_from must be a SKU or null")
		price = entry.get("price")
		if price is not None:
			try:
				if isinstance(price, bool) or not Decimal(str(price)).is_finite():
					raise InvalidOperation
			except InvalidOperation:
				raise _EntryError("price must be a decimal string or null") from None

		current = self.product_versions.get(sku)
		if current is not None and version <= current:
			return {"status": "stale"}

		if renamed_from and renamed_from != sku:
			moved = self.products.pop(renamed_from, None)
			if moved is not None and sku not in self.products:
				self.products[sku] = moved
			stock = self.inventory.pop(renamed_from, None)
			if stock is not None and sku not in self.inventory:
				self.inventory[sku] = stock
			# The old SKU is tombstoned too, so a late update addressed to it cannot bring it back.
			self.product_versions[renamed_from] = max(
				self.product_versions.get(renamed_from, version), version
			)

		self.product_versions[sku] = version
		if entry.get("deleted"):
			self.products.pop(sku, None)
			return {"status": "applied"}

		record = self.products.setdefault(sku, {})
		for field in PRODUCT_FIELDS:
			if field in entry:
				record[field] = copy.deepcopy(entry[field])
		record["sku"] = sku
		record["version"] = version
		return {"status": "applied"}

	def _apply_inventory(self, entry: dict) -> dict:
		sku = _key_of(entry, "sku")
		version = _version_of(entry)
		qty = entry.get("qty")
		if isinstance(qty, bool) or not isinstance(qty, int | float):
			raise _EntryError("qty must be a number")
		current = self.inventory.get(sku)
		if current is not None and version <= current["version"]:
			return {"status": "stale"}
		self.inventory[sku] = {"qty": qty, "version": version}
		return {"status": "applied"}

	def _apply_customer(self, entry: dict) -> dict:
		erp_customer = _key_of(entry, "erp_customer")
		version = _version_of(entry)
		customer_id = entry.get("customer_id")
		if customer_id is not None and (not isinstance(customer_id, str) or not customer_id.strip()):
			raise _EntryError("customer_id must be a non-empty string or null")
		if "addresses" in entry and not isinstance(entry["addresses"], list):
			raise _EntryError("addresses must be a list")

		known_id = self.customer_ids.get(erp_customer)
		current = self.customer_versions.get(erp_customer)
		if current is not None and version <= current:
			return {"status": "stale", "customer_id": known_id}

		if not customer_id:
			customer_id = known_id
		if not customer_id:
			customer_id = f"SF-C{self.next_customer_number:05d}"
			self.next_customer_number += 1
		record = self.customers.pop(known_id, None) if known_id and known_id != customer_id else None
		if record is None:
			record = self.customers.get(customer_id, {})
		for field in CUSTOMER_FIELDS:
			if field in entry:
				record[field] = copy.deepcopy(entry[field])
		record.update(customer_id=customer_id, erp_customer=erp_customer, version=version)
		self.customers[customer_id] = record
		self.customer_ids[erp_customer] = customer_id
		self.customer_versions[erp_customer] = version
		return {"status": "applied", "customer_id": customer_id}

	def _apply_order_status(self, entry: dict) -> dict:
		order_id = _key_of(entry, "order_id")
		version = _version_of(entry)
		current = self.order_status.get(order_id)
		if current is not None and version <= current["version"]:
			return {"status": "stale"}
		record = current or {}
		for field in ORDER_STATUS_FIELDS:
			if field in entry:
				record[field] = copy.deepcopy(entry[field])
		record.update(order_id=order_id, version=version)
		self.order_status[order_id] = record
		return {"status": "applied"}

	# -- the catch-up feed ----------------------------------------------------------------------------

	def add_order(self, order: dict) -> dict:
		if not isinstance(order, dict):
			raise ValueError("an order must be a dict")
		order_id = order.get("order_id")
		if not isinstance(order_id, str) or not order_id:
			raise ValueError("an order needs an order_id")
		stored = copy.deepcopy(order)
		if not stored.get("updated_at"):
			stored["updated_at"] = stored.get("created_at") or datetime.now(timezone.utc).isoformat()
		_parse_time(stored["updated_at"])
		with self.lock:
			# Re-adding an order id is an update to that order, as on a real storefront.
			self.orders[order_id] = stored
		return copy.deepcopy(stored)

	def feed(self, updated_since: datetime | None, limit: int, cursor: str | None) -> dict:
		after = _decode_cursor(cursor) if cursor else None
		with self.lock:
			keyed = sorted(
				((_parse_time(order["updated_at"]), order_id), order)
				for order_id, order in self.orders.items()
			)
			if updated_since is not None:
				keyed = [(key, order) for key, order in keyed if key[0] >= updated_since]
			if after is not None:
				keyed = [(key, order) for key, order in keyed if key > after]
			page = keyed[:limit]
			more = len(keyed) > limit
			return {
				"orders": [copy.deepcopy(order) for _, order in page],
				"next_cursor": _encode_cursor(page[-1][0]) if more and page else None,
			}

	def catalogue(self, limit: int, cursor: str | None) -> dict:
		"""The products the storefront sells, by SKU; the cursor is the last SKU of the previous page."""
		with self.lock:
			skus = sorted(sku for sku in self.products if cursor is None or sku > cursor)
			page = skus[:limit]
			return {
				"products": [copy.deepcopy(self.products[sku]) for sku in page],
				"next_cursor": page[-1] if len(skus) > limit and page else None,
			}

	# -- bookkeeping ----------------------------------------------------------------------------------

	def record_call(self, method: str, path: str, count: int, status: int) -> None:
		with self.lock:
			self.calls.append({"method": method, "path": path, "count": count, "status": status})

	def snapshot(self) -> dict:
		with self.lock:
			counts: dict[str, int] = {}
			for call in self.calls:
				counts[call["path"]] = counts.get(call["path"], 0) + 1
			return copy.deepcopy(
				{
					"products": self.products,
					"inventory": self.inventory,
					"customers": self.customers,
					"order_status": self.order_status,
					"call_counts": counts,
				}
			)


class _Server(ThreadingHTTPServer):
	daemon_threads = True
	allow_reuse_address = True

	def __init__(self, address, handler, storefront: "ReferenceStorefront"):
		self.storefront = storefront
		self._connections: set[socket.socket] = set()
		self._connections_lock = threading.Lock()
		super().__init__(address, handler)

	def server_bind(self):
		# HTTPServer.server_bind() resolves the host's FQDN, a DNS round trip that can stall start-up.
		socketserver.TCPServer.server_bind(self)
		self.server_name, self.server_port = self.server_address[:2]

	def process_request(self, request, client_address):
		with self._connections_lock:
			self._connections.add(request)
		super().process_request(request, client_address)

	def shutdown_request(self, request):
		with self._connections_lock:
			self._connections.discard(request)
		super().shutdown_request(request)

	def close_connections(self) -> None:
		# Keep-alive connections outlive serve_forever(); without this a pooled client would still be
		# answered by a "stopped" storefront.
		with self._connections_lock:
			connections = list(self._connections)
		for connection in connections:
			try:
				connection.shutdown(socket.SHUT_RDWR)
			except OSError:
				pass

	def handle_error(self, request, client_address):
		# A client that gave up (timeout tests) is normal; anything else gets one quiet line, never a body.
		error = sys.exc_info()[1]
		if isinstance(error, ConnectionError | TimeoutError):
			return
		logger.warning("reference storefront: %s while handling a request", type(error).__name__)


class _Handler(BaseHTTPRequestHandler):
	protocol_version = "HTTP/1.1"
	server_version = "ReferenceStorefront/1"
	# Idle keep-alive connections are dropped after this long so threads do not pile up.
	timeout = 60

	server: _Server

	def log_message(self, format, *args):
		pass

	def do_GET(self):
		self._dispatch("GET")

	def do_POST(self):
		self._dispatch("POST")

	def do_PUT(self):
		self._dispatch("PUT")

	def do_DELETE(self):
		self._dispatch("DELETE")

	def _dispatch(self, method: str) -> None:
		parts = urlsplit(self.path)
		path = parts.path
		try:
			body = self._read_body()
		except _BadRequest as exc:
			self.close_connection = True
			self._send(exc.status, {"error": exc.message})
			return
		if path.startswith("/_admin/"):
			self._admin(method, path, body)
		elif path == "/health" or path.startswith("/v1/"):
			self._contract(method, path, parts.query, body)
		else:
			self._send(404, {"error": f"no such endpoint: {path}"})

	def _read_body(self) -> bytes:
		if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
			raise _BadRequest(411, "send a Content-Length; chunked bodies are not accepted")
		try:
			length = int(self.headers.get("Content-Length") or 0)
		except ValueError:
			raise _BadRequest(400, "Content-Length is not a number") from None
		if length < 0:
			raise _BadRequest(400, "Content-Length is negative")
		if length > MAX_BODY_BYTES:
			raise _BadRequest(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
		return self.rfile.read(length) if length else b""

	# -- contract endpoints ---------------------------------------------------------------------------

	def _contract(self, method: str, path: str, query: str, body: bytes) -> None:
		storefront = self.server.storefront
		state = storefront._state
		status, payload, count = 500, {"error": "internal error"}, 0
		try:
			down = state.down
			if down is not None:
				status, payload = down, {"error": "the storefront is down (simulated outage)"}
				return
			problem = self._authentication_problem(body)
			if problem:
				status, payload = 401, {"error": problem}
				return
			status, payload, count = self._route(method, path, query, body)
		except _BadRequest as exc:
			status, payload = exc.status, {"error": exc.message}
		finally:
			state.record_call(method, path, count, status)
			self._send(status, payload)

	def _authentication_problem(self, body: bytes) -> str | None:
		storefront = self.server.storefront
		try:
			verify(
				storefront._signing_secret,
				body,
				self.headers.get(SIGNATURE_HEADER),
				tolerance=SIGNATURE_TOLERANCE_SECONDS,
			)
		except SignatureError as exc:
			return str(exc)
		except ValueError:
			return f"the {SIGNATURE_HEADER} header is malformed"
		if storefront._api_token:
			scheme, _, provided = (self.headers.get("Authorization") or "").partition(" ")
			expected = storefront._api_token.encode()
			if scheme.lower() != "bearer" or not hmac.compare_digest(
				provided.strip().encode("utf-8", "replace"), expected
			):
				return "a valid Authorization: Bearer token is required"
		return None

	def _route(self, method: str, path: str, query: str, body: bytes) -> tuple[int, dict, int]:
		state = self.server.storefront._state
		batches = {
			"/v1/products/batch": ("products", state.apply_products),
			"/v1/inventory/batch": ("items", state.apply_inventory),
			"/v1/customers/batch": ("customers", state.apply_customers),
			"/v1/orders/status": ("orders", state.apply_order_status),
		}
		if path == "/health":
			self._require_method(method, "GET")
			return 200, {"status": "ok", "storefront": "reference"}, 0
		if path == "/v1/orders":
			self._require_method(method, "GET")
			page = state.feed(*_feed_arguments(query))
			return 200, page, len(page["orders"])
		if path == "/v1/products":
			self._require_method(method, "GET")
			_, limit, cursor = _feed_arguments(query)
			page = state.catalogue(limit, cursor)
			return 200, page, len(page["products"])
		if path in batches:
			self._require_method(method, "POST")
			key, apply = batches[path]
			entries = _batch_entries(body, key)
			return 200, {"results": apply(entries)}, len(entries)
		raise _BadRequest(404, f"no such endpoint: {path}")

	def _require_method(self, method: str, allowed: str) -> None:
		if method != allowed:
			raise _BadRequest(405, f"use {allowed} here")

	# -- admin endpoints (reference-only, unauthenticated) --------------------------------------------

	def _admin(self, method: str, path: str, body: bytes) -> None:
		storefront = self.server.storefront
		try:
			if path == "/_admin/state" and method == "GET":
				self._send(200, storefront._state.snapshot())
			elif path == "/_admin/reset" and method == "POST":
				storefront.reset()
				self._send(200, {"ok": True})
			elif path == "/_admin/down" and method == "POST":
				data = _json_object(body)
				if "status" not in data:
					raise _BadRequest(400, 'send {"status": 503} or {"status": null}')
				try:
					storefront.set_down(data["status"])
				except (TypeError, ValueError) as exc:
					raise _BadRequest(400, str(exc)) from None
				self._send(200, {"ok": True, "down": data["status"]})
			elif path == "/_admin/orders" and method == "POST":
				order = _json_object(body).get("order")
				try:
					stored = storefront.add_order(order)
				except ValueError as exc:
					raise _BadRequest(400, str(exc)) from None
				self._send(
					200, {"ok": True, "order_id": stored["order_id"], "updated_at": stored["updated_at"]}
				)
			else:
				self._send(404, {"error": f"no such admin endpoint: {method} {path}"})
		except _BadRequest as exc:
			self._send(exc.status, {"error": exc.message})

	def _send(self, status: int, payload) -> None:
		body = json.dumps(payload, separators=(",", ":"), default=str).encode()
		try:
			reason = HTTPStatus(status).phrase
		except ValueError:
			reason = ""
		self.send_response(status, reason)
		self.send_header("Content-Type", "application/json")
		self.send_header("Content-Length", str(len(body)))
		if self.close_connection:
			self.send_header("Connection", "close")
		self.end_headers()
		if self.command != "HEAD":
			self.wfile.write(body)


def _json_object(body: bytes) -> dict:
	try:
		data = json.loads(body or b"{}")
	except (UnicodeDecodeError, ValueError):
		raise _BadRequest(400, "the body is not valid JSON") from None
	if not isinstance(data, dict):
		raise _BadRequest(400, "the body must be a JSON object")
	return data


def _batch_entries(body: bytes, key: str) -> list:
	entries = _json_object(body).get(key)
	if not isinstance(entries, list):
		raise _BadRequest(400, f'the body must be {{"{key}": [...]}}')
	if len(entries) > MAX_BATCH_ENTRIES:
		raise _BadRequest(413, f"a batch holds at most {MAX_BATCH_ENTRIES} entries")
	return entries


def _feed_arguments(query: str) -> tuple[datetime | None, int, str | None]:
	params = {name: values[-1] for name, values in parse_qs(query, keep_blank_values=True).items()}
	since = None
	if params.get("updated_since"):
		try:
			since = _parse_time(params["updated_since"])
		except ValueError:
			raise _BadRequest(400, "updated_since must be an ISO 8601 timestamp") from None
	try:
		limit = int(params.get("limit") or FEED_DEFAULT_LIMIT)
	except ValueError:
		raise _BadRequest(400, "limit must be an integer") from None
	if limit < 1:
		raise _BadRequest(400, "limit must be at least 1")
	return since, min(limit, FEED_MAX_LIMIT), params.get("cursor") or None


class ReferenceStorefront:
	"""An in-memory storefront served over HTTP in a daemon thread.

	>>> with ReferenceStorefront("secret") as shop:
	...     shop.url  # doctest: +SKIP
	'http://127.0.0.1:54321'
	"""

	def __init__(self, signing_secret: str, api_token: str | None = None, host="127.0.0.1", port=0):
		if not signing_secret:
			raise ValueError("a signing secret is required")
		self._signing_secret = signing_secret
		self._api_token = api_token
		self.host = host
		self.port = port
		self._state = _State()
		self._server: _Server | None = None
		self._thread: threading.Thread | None = None

	def __repr__(self) -> str:
		where = self.url if self._server else f"{self.host}:{self.port} (stopped)"
		return f"<ReferenceStorefront {where}>"

	# -- lifecycle ------------------------------------------------------------------------------------

	def start(self) -> "ReferenceStorefront":
		if self._server is not None:
			return self
		self._server = _Server((self.host, self.port), _Handler, self)
		self.port = self._server.server_address[1]
		self._thread = threading.Thread(
			target=self._server.serve_forever,
			kwargs={"poll_interval": 0.1},
			name=f"reference-storefront-{self.port}",
			daemon=True,
		)
		self._thread.start()
		return self

	def stop(self) -> None:
		server, self._server = self._server, None
		if server is None:
			return
		server.shutdown()
		server.close_connections()
		server.server_close()
		if self._thread is not None:
			self._thread.join(timeout=5)
			self._thread = None

	def __enter__(self) -> "ReferenceStorefront":
		return self.start()

	def __exit__(self, *exc_info) -> None:
		self.stop()

	@property
	def url(self) -> str:
		if self._server is None:
			raise RuntimeError("the storefront is not running; call start() first")
		host = self.host
		if ":" in host:
			host = f"[{host}]"
		return f"http://{host}:{self.port}"

	# -- in-process accessors (thread-safe copies) ----------------------------------------------------

	@property
	def inventory(self) -> dict:
		with self._state.lock:
			return copy.deepcopy(self._state.inventory)

	@property
	def products(self) -> dict:
		with self._state.lock:
			return copy.deepcopy(self._state.products)

	@property
	def customers(self) -> dict:
		with self._state.lock:
			return copy.deepcopy(self._state.customers)

	@property
	def order_status(self) -> dict:
		with self._state.lock:
			return copy.deepcopy(self._state.order_status)

	@property
	def orders(self) -> dict:
		"""The catch-up feed's orders by order id."""
		with self._state.lock:
			return copy.deepcopy(self._state.orders)

	@property
	def calls(self) -> list:
		with self._state.lock:
			return copy.deepcopy(self._state.calls)

	def call_count(self, path: str) -> int:
		with self._state.lock:
			return sum(1 for call in self._state.calls if call["path"] == path)

	def reset(self) -> None:
		"""Forget all data, calls and any simulated outage."""
		self._state.clear()

	def set_down(self, status: int | None) -> None:
		"""Answer every /health and /v1 call with ``status`` (e.g. 503); ``None`` brings it back up."""
		if status is not None:
			if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
				raise ValueError("status must be an HTTP error code (400-599) or None")
		with self._state.lock:
			self._state.down = status

	def add_order(self, order: dict) -> dict:
		"""Put ``order`` into the catch-up feed; ``updated_at`` defaults to ``created_at``."""
		return self._state.add_order(order)

	def add_storefront_product(self, sku: str, **fields) -> None:
		"""A product created in the shop's own back office, which ERPNext knows nothing of."""
		with self._state.lock:
			self._state.products[sku] = {"sku": sku, "version": 0, **copy.deepcopy(fields)}

	def set_storefront_fields(self, sku: str, **fields) -> None:
		"""Edit storefront-owned product fields, as the shop's own back office would."""
		unknown = set(fields) - set(STOREFRONT_OWNED_PRODUCT_FIELDS)
		if unknown:
			raise ValueError(f"not storefront-owned: {', '.join(sorted(unknown))}")
		with self._state.lock:
			self._state.products[sku].update(copy.deepcopy(fields))


def _is_loopback(host: str) -> bool:
	try:
		return ipaddress.ip_address(host).is_loopback
	except ValueError:
		return host == "localhost"


def main(argv: list[str] | None = None) -> int:
	parser = argparse.ArgumentParser(
		prog="python -m ecommerce_bridge.storefront",
		description="Serve the reference storefront until interrupted.",
	)
	parser.add_argument("--host", default="127.0.0.1")
	parser.add_argument("--port", type=int, default=8765)
	# Secrets on a command line are visible in the process list, so the environment is offered too.
	parser.add_argument(
		"--secret",
		default=os.environ.get("STOREFRONT_SIGNING_SECRET"),
		help="signing secret (or set STOREFRONT_SIGNING_SECRET)",
	)
	parser.add_argument(
		"--token",
		default=os.environ.get("STOREFRONT_API_TOKEN"),
		help="API bearer token (or set STOREFRONT_API_TOKEN)",
	)
	args = parser.parse_args(argv)
	if not args.secret:
		parser.error("a signing secret is required (--secret or STOREFRONT_SIGNING_SECRET)")

	storefront = ReferenceStorefront(args.secret, api_token=args.token, host=args.host, port=args.port)
	storefront.start()
	print(f"Reference storefront listening on {storefront.url} (Ctrl+C to stop)", flush=True)
	if not _is_loopback(args.host):
		print("Warning: the unauthenticated /_admin endpoints are reachable from the network.", flush=True)

	stopping = threading.Event()
	# Installed explicitly: a shell that starts us in the background leaves SIGINT ignored.
	for signum in (signal.SIGINT, signal.SIGTERM):
		signal.signal(signum, lambda *_: stopping.set())
	try:
		while not stopping.is_set():
			stopping.wait(1)
	except KeyboardInterrupt:
		pass
	finally:
		storefront.stop()
	return 0


if __name__ == "__main__":
	raise SystemExit(main())
