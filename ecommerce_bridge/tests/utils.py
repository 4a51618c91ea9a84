"""What the integration tests share: a configured bridge, the reference storefront, the real web app
over HTTP, and a way to run the queued background jobs the way a worker does.

Nothing here is mocked. The storefront is the reference storefront on a real socket; storefront calls
into ERPNext go over real HTTP to Frappe's own WSGI application served from a thread; queued jobs are
taken off Redis and run by an RQ worker in another thread, with its own database connection.
"""

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import frappe
import requests
from frappe.tests.utils import FrappeTestCase
from frappe.utils import flt, nowdate
from werkzeug.serving import make_server

from ecommerce_bridge.contract.signing import SIGNATURE_HEADER, sign
from ecommerce_bridge.storefront.server import ReferenceStorefront

SECRET = "test-signing-secret"
TOKEN = "test-api-token"
PREFIX = "EB"


def before_tests():
	"""ERPNext's own test setup: finishes the setup wizard (a company, fiscal year, defaults)."""
	from erpnext.setup.utils import before_tests as erpnext_before_tests

	erpnext_before_tests()


# ---- ERPNext records the bridge needs ------------------------------------------------------------


def company() -> str:
	return (
		frappe.db.get_single_value("Global Defaults", "default_company")
		or frappe.get_all("Company", pluck="name")[0]
	)


def abbr() -> str:
	return frappe.get_cached_value("Company", company(), "abbr")


def _ensure(doctype: str, name: str, values: dict) -> str:
	if not frappe.db.exists(doctype, name):
		doc = frappe.get_doc({"doctype": doctype, **values})
		doc.insert(ignore_permissions=True)
		return doc.name
	return name


def warehouse(label: str, parent: str | None = None, is_group: int = 0) -> str:
	name = f"{label} - {abbr()}"
	return _ensure(
		"Warehouse",
		name,
		{
			"warehouse_name": label,
			"company": company(),
			"is_group": is_group,
			"parent_warehouse": parent or f"All Warehouses - {abbr()}",
		},
	)


def account(label: str, parent_like: str, account_type: str = "") -> str:
	name = f"{label} - {abbr()}"
	parent = frappe.db.get_value(
		"Account", {"company": company(), "is_group": 1, "account_name": parent_like}
	)
	return _ensure(
		"Account",
		name,
		{"account_name": label, "company": company(), "parent_account": parent, "account_type": account_type},
	)


def setup_bridge(storefront_url: str, **overrides) -> "frappe.Document":
	"""Configure and enable the bridge against ``storefront_url``; returns the Settings."""
	stores = warehouse(f"{PREFIX} Stores", is_group=1)
	shop = warehouse(f"{PREFIX} Shop", parent=stores)
	warehouse(f"{PREFIX} Backroom", parent=stores)
	warehouse(f"{PREFIX} Outside")
	bank = account(f"{PREFIX} Card Clearing", "Bank Accounts", "Bank")
	mode = _ensure("Mode of Payment", f"{PREFIX} Card", {"mode_of_payment": f"{PREFIX} Card", "type": "Bank"})
	mop = frappe.get_doc("Mode of Payment", mode)
	if not mop.accounts:
		mop.append("accounts", {"company": company(), "default_account": bank})
		mop.save(ignore_permissions=True)
	settings = frappe.get_single("Ecommerce Bridge Settings")
	settings.update(
		{
			"enabled": 1,
			"storefront_url": storefront_url,
			"api_token": TOKEN,
			"signing_secret": SECRET,
			"company": company(),
			"price_list": "Standard Selling",
			"order_warehouse": shop,
			"customer_group": frappe.get_all("Customer Group", filters={"is_group": 0}, pluck="name")[0],
			"territory": frappe.get_all("Territory", filters={"is_group": 0}, pluck="name")[0],
			"order_naming_series": "SO-WEB-.YYYY.-",
			"shipping_mode": "Charge",
			"shipping_account": account(f"{PREFIX} Shipping Income", "Indirect Income", "Chargeable"),
			"sync_products": 1,
			"sync_stock": 1,
			"sync_orders": 1,
			"sync_customers": 1,
			"inbound_rate_limit": 100000,
			"max_attempts": 5,
		}
	)
	settings.set("warehouses", [{"warehouse": stores}])
	settings.set(
		"tax_accounts", [{"tax_code": "VAT", "account": account(f"{PREFIX} VAT", "Duties and Taxes", "Tax")}]
	)
	settings.set("payment_accounts", [{"gateway": "stripe", "mode_of_payment": mode, "account": bank}])
	settings.update(overrides)
	settings.save(ignore_permissions=True)
	frappe.db.commit()
	return settings


def make_item(code: str | None = None, publish: int = 1, price: float | None = 10, **values) -> str:
	code = code or f"{PREFIX}-{uuid.uuid4().hex[:8].upper()}"
	if not frappe.db.exists("Item", code):
		frappe.get_doc(
			{
				"doctype": "Item",
				"item_code": code,
				"item_name": values.pop("item_name", f"Test product {code}"),
				"item_group": values.pop("item_group", "Products"),
				"stock_uom": "Nos",
				"is_stock_item": values.pop("is_stock_item", 1),
				"ecommerce_publish": publish,
				**values,
			}
		).insert(ignore_permissions=True)
	if price is not None:
		frappe.get_doc(
			{
				"doctype": "Item Price",
				"item_code": code,
				"price_list": "Standard Selling",
				"price_list_rate": price,
			}
		).insert(ignore_permissions=True)
	return code


def make_bundle(parts: dict[str, float]) -> str:
	"""A new Product Bundle Item made of ``parts`` (item code -> quantity)."""
	bundle = make_item(is_stock_item=0, price=None)
	frappe.get_doc(
		{
			"doctype": "Product Bundle",
			"new_item_code": bundle,
			"items": [{"item_code": code, "qty": qty} for code, qty in parts.items()],
		}
	).insert()
	frappe.db.commit()
	return bundle


def stock_entry(purpose: str, item_code: str, qty: float, source=None, target=None, submit=True):
	entry = frappe.get_doc(
		{
			"doctype": "Stock Entry",
			"stock_entry_type": purpose,
			"company": company(),
			"items": [
				{
					"item_code": item_code,
					"qty": qty,
					"s_warehouse": source,
					"t_warehouse": target,
					"basic_rate": 5,
					"conversion_factor": 1,
				}
			],
		}
	)
	entry.insert(ignore_permissions=True)
	if submit:
		entry.submit()
	return entry


def shop() -> str:
	return f"{PREFIX} Shop - {abbr()}"


def backroom() -> str:
	return f"{PREFIX} Backroom - {abbr()}"


def outside() -> str:
	return f"{PREFIX} Outside - {abbr()}"


def user_with_roles(email: str, roles, password: str | None = None) -> str:
	"""A desk user holding ``roles`` (added to any it has), with ``password`` when given."""
	if not frappe.db.exists("User", email):
		user = frappe.get_doc(
			{"doctype": "User", "email": email, "first_name": email.split("@")[0], "send_welcome_email": 0}
		)
		user.insert(ignore_permissions=True)
	user = frappe.get_doc("User", email)
	user.add_roles(*roles)
	if password:
		from frappe.utils.password import update_password

		update_password(email, password)
	return email


# ---- the web app, the storefront and the worker -----------------------------------------------------


class WebServer:
	"""Frappe's WSGI application on a real socket, in this process (what ``bench serve`` runs)."""

	def __init__(self):
		import frappe.app

		frappe.app._site = frappe.local.site
		self._server = make_server("127.0.0.1", 0, frappe.app.application, threaded=True)
		self.url = f"http://127.0.0.1:{self._server.server_port}"
		self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

	def start(self) -> "WebServer":
		self._thread.start()
		return self

	def stop(self) -> None:
		self._server.shutdown()
		self._server.server_close()

	def call(self, method: str, payload=None, secret: str = SECRET, headers=None, http="POST", params=None):
		"""Call a whitelisted method as the storefront does: signed raw JSON."""
		body = b"" if payload is None else frappe.as_json(payload, indent=None).encode()
		signed = {SIGNATURE_HEADER: sign(secret, body), "Content-Type": "application/json"}
		signed.update(headers or {})
		return requests.request(
			http,
			f"{self.url}/api/method/{method}",
			data=body or None,
			headers=signed,
			params=params,
			timeout=60,
		)

	def call_at_once(self, method: str, payloads: list) -> list[requests.Response]:
		"""Send every payload to ``method`` at the same moment, each from its own thread."""
		with ThreadPoolExecutor(len(payloads)) as pool:
			return list(pool.map(lambda payload: self.call(method, payload), payloads))


def start_storefront() -> ReferenceStorefront:
	return ReferenceStorefront(signing_secret=SECRET, api_token=TOKEN).start()


class BridgeCase(FrappeTestCase):
	"""A configured bridge with the reference storefront and the web app, both on real sockets."""

	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.storefront = start_storefront()
		cls.web = WebServer().start()
		setup_bridge(cls.storefront.url)
		clear_queues()

	@classmethod
	def tearDownClass(cls):
		cls.web.stop()
		cls.storefront.stop()
		super().tearDownClass()

	def ingest(self, payload, expect: int = 202) -> dict:
		"""Send a checkout as the storefront does; returns the answer's message."""
		frappe.db.commit()  # the request runs on another connection: it must not wait on this one's locks
		response = self.web.call("ecommerce_bridge.api.ingest_order", payload)
		self.assertEqual(response.status_code, expect, response.text[:1000])
		frappe.db.commit()  # end this test's snapshot, so it sees what the request committed
		return response.json().get("message") or response.json()

	def checkout(self, payload) -> "frappe.Document":
		"""Send a checkout, run the worker, return its Sync Log row."""
		answer = self.ingest(payload)
		run_queued_jobs()
		return frappe.get_doc("Ecommerce Sync Log", answer["log"])

	def sales_orders(self, order_id) -> list[str]:
		return frappe.get_all("Sales Order", filters={"ecommerce_order_id": order_id}, pluck="name")


def run_queued_jobs(queues=("short", "default", "long")) -> None:
	"""Run every queued job with an RQ worker in its own thread, as a bench worker would."""
	from frappe.utils.background_jobs import get_queue, get_redis_conn
	from rq import SimpleWorker
	from rq.timeouts import TimerDeathPenalty

	class ThreadWorker(SimpleWorker):
		"""Signals belong to the main thread; this worker lives in another, so its timeouts use a timer."""

		death_penalty_class = TimerDeathPenalty

		def _install_signal_handlers(self):
			pass

	frappe.db.commit()
	connection = get_redis_conn()
	worker = ThreadWorker([get_queue(name) for name in queues], connection=connection)
	errors = []

	def work():
		try:
			worker.work(burst=True, logging_level="WARNING", with_scheduler=False)
		except Exception as exc:
			errors.append(exc)

	thread = threading.Thread(target=work)
	thread.start()
	thread.join(timeout=300)
	if errors:
		raise errors[0]


def clear_queues(queues=("short", "default", "long")) -> None:
	from frappe.utils.background_jobs import get_queue

	for name in queues:
		get_queue(name).empty()


# ---- storefront payloads ------------------------------------------------------------------------


def address(**overrides) -> dict:
	return {
		"line1": "1 Main Street",
		"city": "Springfield",
		"postcode": "12345",
		"country": "US",
		**overrides,
	}


def order_payload(lines, order_id: str | None = None, email: str = "ada@example.com", **overrides) -> dict:
	"""A storefront checkout whose total adds up: ``lines`` are (sku, qty, unit_price[, discount])."""
	built = []
	for i, line in enumerate(lines, start=1):
		sku, qty, price, *rest = line
		built.append(
			{
				"line_id": str(i),
				"sku": sku,
				"qty": qty,
				"unit_price": f"{price:.2f}",
				"discount": f"{(rest or [0])[0]:.2f}",
			}
		)
	payload = {
		"order_id": order_id or f"W{uuid.uuid4().hex[:10]}",
		"created_at": f"{nowdate()}T10:00:00+00:00",
		"currency": "USD",
		"customer": {
			"id": None,
			"email": email,
			"first_name": "Ada",
			"last_name": "Lovelace",
			"phone": "+1 555 0100",
		},
		"billing_address": address(),
		"lines": built,
		"discount_total": "0.00",
		"taxes": [],
	}
	payload.update(overrides)
	payload["total"] = str(expected_total(payload))
	return payload


def expected_total(payload: dict) -> Decimal:
	total = sum(
		Decimal(str(line["unit_price"])) * Decimal(str(line["qty"])) - Decimal(str(line.get("discount") or 0))
		for line in payload["lines"]
	)
	total -= Decimal(str(payload.get("discount_total") or 0))
	if payload.get("shipping"):
		total += Decimal(str(payload["shipping"]["amount"]))
	total += sum((Decimal(str(tax["amount"])) for tax in payload.get("taxes") or []), Decimal("0"))
	return total.quantize(Decimal("0.01"))


def bin_qty(item_code: str) -> float:
	return flt(frappe.db.sql("select sum(actual_qty) from tabBin where item_code=%s", item_code)[0][0])
