"""Where a storefront checkout becomes a Sales Order (and, when paid, an advance Payment Entry).

``process_order`` runs in a background job for a Sync Log row that ``api.ingest_order`` committed. It is
safe to run any number of times: the Sales Order's storefront order id and the Payment Entry's key are
unique indexes, so a retry, a duplicate delivery or a catch-up of the same order finds what exists.

Money is taken as sent: line prices are fixed (no pricing rules, no price-list re-pricing), discounts,
shipping and taxes are applied as amounts, rounding is off, and the grand total is compared with the
storefront's total to the cent; a difference is flagged for an accountant.
"""

import json
import random
import time
from datetime import timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import frappe
from frappe import _
from frappe.utils import add_to_date, flt, get_datetime, get_system_timezone, getdate, now_datetime

from ecommerce_bridge.contract.models import OrderCancel, OrderIn, normalize_email
from ecommerce_bridge.inbound.customer import ensure_address, ensure_customer, hold_shopper
from ecommerce_bridge.settings import SETTINGS, get_settings, make_client, pillar_enabled
from ecommerce_bridge.skus import normalize_sku
from ecommerce_bridge.sync_log import (
	LOG,
	TRANSACTION_LOST,
	BridgeError,
	new_log,
	record_failure,
	update_log,
)

STALE_PROCESSING = timedelta(minutes=10)
ORDER_CATCH_UP_OVERLAP = timedelta(minutes=10)
CENT = Decimal("0.01")


class UnknownSku(BridgeError):
	pass


def order_key(order_id: str) -> str:
	return f"order:{order_id}"


def order_id_of_payment_key(key: str | None) -> str | None:
	"""The storefront order of a Payment Entry the bridge booked: ``order:<id>:payment`` (the checkout's
	payment) or ``order:<id>:refund:<return id>``."""
	if not key or not key.startswith("order:"):
		return None
	rest = key.removeprefix("order:")
	if ":refund:" in rest:
		return rest.split(":refund:", 1)[0]
	return rest.removesuffix(":payment") if rest.endswith(":payment") else None


# ---- the job ------------------------------------------------------------------------------------


def run_logged(log_name: str, work) -> None:
	"""Claim a Queued inbound log, run ``work(payload, log_name)`` and record the outcome.

	The claim is committed first, so two workers never process one log, and a crash leaves the row
	in Processing where ``retry_due`` finds it again. Only Queued rows are claimed: a retry queues its row
	first, so a job that finds its row already worked off (see ``work_off``) does nothing. The work runs in a fresh transaction that starts
	by holding the shopper (see ``hold_shopper``), so it sees what an earlier request for the same
	shopper committed.
	"""
	frappe.db.sql(
		f"""update `tab{LOG}` set status = 'Processing', attempts = attempts + 1, modified = %s
		where name = %s and status = 'Queued'""",
		(now_datetime(), log_name),
	)
	if not frappe.db._cursor.rowcount:
		frappe.db.rollback()
		return
	frappe.db.commit()
	attempts, raw = frappe.db.get_value(LOG, log_name, ["attempts", "request_payload"])
	started = time.monotonic()
	frappe.set_user("Administrator")
	frappe.flags.ecommerce_inbound = True
	try:
		payload = json.loads(raw)
		frappe.db.commit()
		fields = {"status": "Success", "error": None, "traceback": None, "next_retry_at": None}
		fields.update(run_with_retries(lambda: work(payload, log_name), shopper_email(payload)) or {})
		fields["duration_ms"] = int((time.monotonic() - started) * 1000)
		update_log(log_name, **fields)
		frappe.db.commit()
	except Exception as exc:
		frappe.db.rollback()
		frappe.clear_messages()
		record_failure(log_name, exc, attempts, started)
		frappe.db.commit()
	finally:
		frappe.flags.ecommerce_inbound = False


def shopper_email(payload) -> str | None:
	"""The normalised e-mail of the shopper an inbound payload concerns (orders and sign-ups)."""
	if not isinstance(payload, dict):
		return None
	customer = payload.get("customer") if isinstance(payload.get("customer"), dict) else payload
	return normalize_email(str(customer.get("email") or "")) or None


def run_with_retries(work, email: str | None = None, attempts: int = 3):
	"""Run ``work`` in the current (fresh) transaction, holding the shopper first; run it again when
	InnoDB rolled the transaction back as a deadlock victim."""
	for attempt in range(1, attempts + 1):
		if email:
			hold_shopper(email)
		try:
			return work()
		except TRANSACTION_LOST:
			if attempt == attempts:
				raise
			frappe.db.rollback()
			frappe.clear_messages()
			time.sleep(random.uniform(0.02, 0.1) * attempt)


def process_order(log_name: str) -> None:
	run_logged(log_name, _process_order)


def _process_order(payload: dict, log_name: str) -> dict:
	order = OrderIn.model_validate(payload)
	sales_order = frappe.db.get_value("Sales Order", {"ecommerce_order_id": order.order_id}, "name")
	if not sales_order:
		sales_order = create_sales_order(order, log_name)
	so = frappe.get_doc("Sales Order", sales_order)
	notes = []
	if order.payment and order.payment.status == "paid":
		notes += record_payment(so, order)
		if not notes:
			from ecommerce_bridge.inbound.invoicing import invoice_paid_order

			notes += invoice_paid_order(so)
	grand_total = Decimal(str(so.grand_total)).quantize(CENT)
	if grand_total != order.total:
		notes.append(
			_("Grand total {0} differs from the storefront total {1}: check taxes and discounts.").format(
				grand_total, order.total
			)
		)
	return {
		"reference_doctype": "Sales Order",
		"reference_name": so.name,
		"needs_attention": int(bool(notes)),
		"error": "\n".join(notes) or None,
		"response": {"sales_order": so.name, "grand_total": str(grand_total)},
	}


def create_sales_order(order: OrderIn, log_name: str) -> str:
	settings = get_settings()
	customer = ensure_customer(order.customer)
	billing = ensure_address(customer, order.billing_address, "Billing")
	shipping = (
		ensure_address(customer, order.shipping_address, "Shipping") if order.shipping_address else billing
	)
	date = getdate(get_datetime(order.created_at)) if order.created_at else getdate()

	items, folded_discount = [], Decimal("0")
	for position, line in enumerate(order.lines, start=1):
		item_code = resolve_item(line.sku, position)
		row = {
			"item_code": item_code,
			"qty": float(line.qty),
			"delivery_date": date,
			"warehouse": settings.order_warehouse,
			"ecommerce_line_id": line.line_id,
		}
		per_unit = line.discount / line.qty
		if per_unit == per_unit.quantize(CENT):
			row.update(price_list_rate=float(line.unit_price), discount_amount=float(per_unit))
			row["rate"] = float(line.unit_price - per_unit)
		else:
			# A discount that does not split into whole cents per unit is kept exact at order level.
			row.update(price_list_rate=float(line.unit_price), rate=float(line.unit_price))
			folded_discount += line.discount
		if line.shipping_address:
			row["ecommerce_shipping_address"] = ensure_address(customer, line.shipping_address, "Shipping")
		items.append(row)

	taxes = []
	if order.shipping and order.shipping.amount:
		label = _("Shipping") + (f": {order.shipping.method}" if order.shipping.method else "")
		if settings.shipping_mode == "Item":
			items.append(
				{
					"item_code": settings.shipping_item,
					"qty": 1,
					"rate": float(order.shipping.amount),
					"price_list_rate": float(order.shipping.amount),
					"delivery_date": date,
					"description": label,
				}
			)
		else:
			taxes.append(_actual_charge(settings.shipping_account, label, order.shipping.amount))
	tax_accounts = {row.tax_code.casefold(): row.account for row in settings.tax_accounts}
	for tax in order.taxes:
		account = tax_accounts.get(tax.code.casefold())
		if not account:
			raise BridgeError(
				_(
					"Tax code {0} has no account in Ecommerce Bridge Settings > Tax Accounts. Map it, then retry."
				).format(frappe.bold(tax.code))
			)
		taxes.append(_actual_charge(account, tax.description or tax.code, tax.amount))

	so = frappe.get_doc(
		{
			"doctype": "Sales Order",
			"naming_series": settings.order_naming_series or None,
			"company": settings.company,
			"customer": customer,
			"order_type": "Sales",
			"transaction_date": date,
			"delivery_date": date,
			"currency": order.currency,
			"selling_price_list": settings.price_list,
			"ignore_pricing_rule": 1,
			"disable_rounded_total": 1,
			"po_no": order.order_id,
			"ecommerce_order_id": order.order_id,
			"ecommerce_sync_log": log_name,
			"customer_address": billing,
			"shipping_address_name": shipping,
			"set_warehouse": settings.order_warehouse,
			"items": items,
			"taxes": taxes,
			"apply_discount_on": "Net Total",
			"discount_amount": float(order.discount_total + folded_discount),
		}
	)
	# Submitted on insert, as ERPNext's REST API does: one validation instead of two.
	so.docstatus = 1
	frappe.db.savepoint("ecommerce_order")
	try:
		so.insert(ignore_permissions=True)
	except (frappe.UniqueValidationError, frappe.DuplicateEntryError):
		# The unique storefront order id: someone else made this order first.
		frappe.db.rollback(save_point="ecommerce_order")
		frappe.clear_messages()
		existing = frappe.db.get_value(
			"Sales Order", {"ecommerce_order_id": order.order_id}, "name", for_update=True
		)
		if existing:
			return existing
		raise
	# ERPNext leaves a document submitted on insert in status Draft; set the one a submit would.
	so.set_status(update=True, update_modified=False)
	return so.name


def _actual_charge(account: str, description: str, amount: Decimal) -> dict:
	return {
		"charge_type": "Actual",
		"account_head": account,
		"description": description,
		"tax_amount": float(amount),
	}


def resolve_item(sku: str, position: int) -> str:
	"""The one enabled Item whose code normalises like ``sku``, or a BridgeError naming the SKU."""
	matches = frappe.get_all(
		"Item",
		filters={"ecommerce_sku_key": normalize_sku(sku)},
		fields=["name", "disabled"],
		order_by="name",
	)
	if not matches:
		raise UnknownSku(
			_(
				"Line {0}: SKU {1} matches no Item. Create the Item (or correct its code), then retry this log."
			).format(position, frappe.bold(sku))
		)
	if len(matches) > 1:
		raise UnknownSku(
			_(
				"Line {0}: SKU {1} matches several Items ({2}). Rename all but one, then retry this log."
			).format(position, frappe.bold(sku), ", ".join(m.name for m in matches))
		)
	if matches[0].disabled:
		raise UnknownSku(
			_("Line {0}: SKU {1} is Item {2}, which is disabled. Enable it, then retry this log.").format(
				position, frappe.bold(sku), matches[0].name
			)
		)
	return matches[0].name


def record_payment(so, order: OrderIn) -> list[str]:
	"""An advance Payment Entry against the Sales Order, once (its key is a unique index)."""
	from erpnext.accounts.doctype.payment_entry.payment_entry import get_payment_entry

	payment = order.payment
	key = f"{order_key(order.order_id)}:payment"
	if frappe.db.exists("Payment Entry", {"ecommerce_payment_key": key, "docstatus": ("<", 2)}):
		return []
	mapping = next(
		(
			row
			for row in get_settings().payment_accounts
			if row.gateway.casefold() == payment.gateway.casefold()
		),
		None,
	)
	if not mapping:
		return [
			_(
				"Paid through {0}, which has no account in Ecommerce Bridge Settings > Payment Gateway Accounts: "
				"record the payment by hand or map the gateway and retry."
			).format(payment.gateway)
		]
	amount = float(payment.amount) if payment.amount is not None else so.grand_total
	pe = get_payment_entry("Sales Order", so.name, party_amount=amount, bank_account=mapping.account)
	pe.update(
		{
			"mode_of_payment": mapping.mode_of_payment,
			"reference_no": payment.transaction_id,
			"reference_date": so.transaction_date,
			"ecommerce_payment_key": key,
			"remarks": _("Storefront order {0} paid through {1}, transaction {2}").format(
				order.order_id, payment.gateway, payment.transaction_id
			),
		}
	)
	pe.flags.ignore_permissions = True
	pe.insert()
	pe.submit()
	return []


# ---- cancellation -------------------------------------------------------------------------------


def process_cancel(log_name: str) -> None:
	run_logged(log_name, _process_cancel)


def _process_cancel(payload: dict, log_name: str) -> dict:
	request = OrderCancel.model_validate(payload)
	# Locked first, like a return: a cancellation and a return of one order never overlap.
	so_name = frappe.db.get_value(
		"Sales Order", {"ecommerce_order_id": request.order_id}, "name", for_update=True
	)
	if not so_name:
		order_log = frappe.db.get_value(LOG, {"idempotency_key": order_key(request.order_id)}, "status")
		if order_log in ("Queued", "Processing", "Failed"):
			raise BridgeError(_("The order is not created yet; the cancellation is retried after it."))
		return {
			"status": "Skipped",
			"error": _("No Sales Order exists for storefront order {0}.").format(request.order_id),
		}
	so = frappe.get_doc("Sales Order", so_name)
	reference = {"reference_doctype": "Sales Order", "reference_name": so.name}
	if so.docstatus == 2:
		return reference
	if so.per_delivered or so.per_billed:
		# Goods or an invoice went out: the cancellation becomes a return of everything.
		from ecommerce_bridge.inbound.returns import reverse_whole_order

		booked = reverse_whole_order(so, request.refund, request.reason)
		return {**reference, "response": booked}
	refund = None
	if request.refund:
		from ecommerce_bridge.inbound.returns import record_refund

		remark = _("Storefront cancellation of order {0}").format(request.order_id)
		refund = record_refund(so, request.refund, f"cancel-{request.order_id}", remark, [])
	if flt(so.advance_paid):
		# ERPNext refuses to cancel an order a payment points to: the payment stays with the customer
		# as an advance (which the refund, when there is one, pays back).
		from erpnext.accounts.utils import unlink_ref_doc_from_payment_entries

		unlink_ref_doc_from_payment_entries(so)
		so.reload()
	so.flags.ignore_permissions = True
	so.add_comment(
		"Comment", _("Cancelled by the storefront: {0}").format(request.reason or _("no reason given"))
	)
	so.cancel()
	return {**reference, "response": {"refund": refund}}


# ---- scheduled --------------------------------------------------------------------------------------


JOBS = {
	"Order": "ecommerce_bridge.inbound.order.process_order",
	"Order Cancel": "ecommerce_bridge.inbound.order.process_cancel",
	"Customer": "ecommerce_bridge.inbound.order.process_customer",
	"Return": "ecommerce_bridge.inbound.returns.process_return",
	"Invoice": "ecommerce_bridge.inbound.invoicing.process_invoice",
}


def process_customer(log_name: str) -> None:
	"""Retry of a sign-up or profile change that failed in its request."""
	from ecommerce_bridge.contract.models import CustomerUpsert
	from ecommerce_bridge.inbound.customer import upsert_customer

	def work(payload, log_name):
		customer = upsert_customer(CustomerUpsert.model_validate(payload))
		return {"reference_doctype": "Customer", "reference_name": customer}

	run_logged(log_name, work)


DRAIN_LIMIT = 100
DRAIN_SECONDS = 60


def enqueue_log(log_name: str, entity: str, after_commit: bool = True) -> None:
	frappe.enqueue(
		"ecommerce_bridge.inbound.order.work_off",
		queue="short",
		log_name=log_name,
		entity=entity,
		enqueue_after_commit=after_commit,
		# One waiting job per row, however often a retry or the safety net asks again.
		job_id=f"ecommerce_bridge:log:{log_name}",
		deduplicate=True,
	)


def work_off(log_name: str, entity: str) -> None:
	"""The background job of a Sync Log row: its work, then whatever other inbound work is queued.

	A Frappe worker forks a fresh process for every job, and the first order in a process pays about half
	a second importing ERPNext's controllers. Taking the next queued rows in the same job pays that once
	per burst instead of once per order; the jobs of rows already done here find them claimed and end.
	"""
	frappe.get_attr(JOBS[entity])(log_name)
	drain_queued()


def drain_queued(limit: int = DRAIN_LIMIT, seconds: float = DRAIN_SECONDS) -> int:
	"""Work off queued inbound rows, oldest first, each claimed under a row lock. Returns rows taken."""
	deadline = time.monotonic() + seconds
	taken = 0
	while taken < limit and time.monotonic() < deadline:
		frappe.db.rollback()  # a fresh snapshot: rows other requests committed meanwhile
		found = frappe.db.sql(
			f"""select name, entity from `tab{LOG}`
			where status = 'Queued' and direction != 'Outbound' and entity in %(entities)s
			order by creation limit 1 for update skip locked""",
			{"entities": tuple(JOBS)},
		)
		if not found:
			break
		# run_logged claims it in this transaction, which holds the row's lock until then.
		frappe.get_attr(JOBS[found[0][1]])(found[0][0])
		taken += 1
	frappe.db.rollback()
	return taken


def retry_due() -> int:
	"""Re-queue inbound work whose retry time has come, and work a crashed worker left in Processing."""
	now = now_datetime()
	due = frappe.get_all(
		LOG,
		filters={
			"direction": ("!=", "Outbound"),
			"entity": ("in", list(JOBS)),
			"status": "Failed",
			"next_retry_at": ("<=", now),
		},
		fields=["name", "entity", "status"],
		limit=500,
	)
	stuck = frappe.get_all(
		LOG,
		filters={
			"direction": ("!=", "Outbound"),
			"entity": ("in", list(JOBS)),
			"status": "Processing",
			"modified": ("<", now - STALE_PROCESSING),
		},
		fields=["name", "entity", "status"],
		limit=500,
	)
	queued = 0
	for row in due + stuck:
		# Only if still as read: a worker may have claimed it meanwhile.
		frappe.db.sql(
			f"""update `tab{LOG}` set status = 'Queued', next_retry_at = null
			where name = %s and status = %s""",
			(row.name, row.status),
		)
		if frappe.db._cursor.rowcount:
			enqueue_log(row.name, row.entity)
			queued += 1
	# Queued rows whose job was lost (Redis flushed, a worker killed before it started) get a new one;
	# a job for a row already worked off finds it claimed and ends.
	for row in frappe.get_all(
		LOG,
		filters={
			"direction": ("!=", "Outbound"),
			"entity": ("in", list(JOBS)),
			"status": "Queued",
			"modified": ("<", now - STALE_PROCESSING),
		},
		fields=["name", "entity"],
		limit=500,
	):
		enqueue_log(row.name, row.entity)
		queued += 1
	return queued


def fetch_missed_orders() -> int:
	"""Ask the storefront for orders changed since the watermark and ingest any we never received."""
	if not pillar_enabled("orders"):
		return 0
	settings = get_settings()
	started = now_datetime()
	since = get_datetime(settings.order_watermark or add_to_date(started, days=-1)) - ORDER_CATCH_UP_OVERLAP
	added = 0
	feed = make_client().pages(
		"/v1/orders", "orders", {"updated_since": as_utc(since).isoformat(), "limit": 200}
	)
	for payload in feed:
		added += ingest_from_catch_up(payload)
	frappe.db.set_single_value(SETTINGS, "order_watermark", started, update_modified=False)
	frappe.db.commit()
	return added


def as_utc(moment):
	"""Frappe keeps naive datetimes in the system time zone; the storefront is told UTC, explicitly."""
	return moment.replace(tzinfo=ZoneInfo(get_system_timezone())).astimezone(timezone.utc)


def ingest_from_catch_up(payload: dict) -> int:
	order_id = str(payload.get("order_id") or "")
	if not order_id or frappe.db.exists(LOG, {"idempotency_key": order_key(order_id)}):
		return 0
	frappe.db.savepoint("ecommerce_catch_up")
	try:
		log = new_log(
			"Inbound",
			"Order",
			request_payload=payload,
			storefront_id=order_id,
			idempotency_key=order_key(order_id),
		)
	except frappe.UniqueValidationError:
		frappe.db.rollback(save_point="ecommerce_catch_up")
		frappe.clear_messages()
		return 0
	enqueue_log(log.name, "Order")
	return 1
