"""Order Reconciliation: every storefront order of the period against its Sales Order and payment.

One row per storefront order the bridge received (its inbound Sync Log row), with the storefront's total
and payment next to the Sales Order's grand total and the advance recorded against it, and what came
back: credit notes for returns and refunds paid. With "Compare with
the storefront" ticked, the storefront's own order feed is read too, so an order whose checkout call
never arrived shows up as Missing. The chart counts orders per day: received against made into Sales Orders.
"""

import json
from decimal import Decimal, InvalidOperation

import frappe
from frappe import _
from frappe.utils import add_days, flt, get_datetime, getdate, today

from ecommerce_bridge.inbound.returns import order_money
from ecommerce_bridge.sync_log import LOG

OK = "OK"
CENT = Decimal("0.01")


def execute(filters=None):
	filters = frappe._dict(filters or {})
	from_date = getdate(filters.from_date or add_days(today(), -30))
	to_date = getdate(filters.to_date or today())
	rows = received_orders(from_date, to_date)
	notes = []
	if filters.compare_with_storefront:
		missing, note = storefront_orders_not_received(from_date, to_date, {row["order_id"] for row in rows})
		rows += missing
		if note:
			notes.append(note)
	rows.sort(key=lambda row: (row["date"], row["order_id"]))
	if filters.only_problems:
		rows = [row for row in rows if row["needs_look"]]
	return columns(), rows, "<br>".join(notes) or None, chart(rows), summary(rows)


def columns() -> list[dict]:
	return [
		{"fieldname": "date", "label": _("Date"), "fieldtype": "Date", "width": 100},
		{"fieldname": "order_id", "label": _("Storefront Order"), "fieldtype": "Data", "width": 140},
		{"fieldname": "result", "label": _("Result"), "fieldtype": "Data", "width": 190},
		{
			"fieldname": "currency",
			"label": _("Currency"),
			"fieldtype": "Link",
			"options": "Currency",
			"hidden": 1,
		},
		{
			"fieldname": "storefront_total",
			"label": _("Storefront Total"),
			"fieldtype": "Currency",
			"options": "currency",
			"width": 120,
		},
		{
			"fieldname": "sales_order",
			"label": _("Sales Order"),
			"fieldtype": "Link",
			"options": "Sales Order",
		},
		{"fieldname": "sales_order_status", "label": _("Order Status"), "fieldtype": "Data", "width": 110},
		{
			"fieldname": "grand_total",
			"label": _("Grand Total"),
			"fieldtype": "Currency",
			"options": "currency",
			"width": 120,
		},
		{
			"fieldname": "difference",
			"label": _("Difference"),
			"fieldtype": "Currency",
			"options": "currency",
			"width": 100,
		},
		{
			"fieldname": "paid_on_storefront",
			"label": _("Paid on Storefront"),
			"fieldtype": "Currency",
			"options": "currency",
			"width": 120,
		},
		{
			"fieldname": "payment_recorded",
			"label": _("Payment Recorded"),
			"fieldtype": "Currency",
			"options": "currency",
			"width": 120,
		},
		{
			"fieldname": "credited",
			"label": _("Credited (Returns)"),
			"fieldtype": "Currency",
			"options": "currency",
			"width": 120,
		},
		{
			"fieldname": "refunded",
			"label": _("Refunded"),
			"fieldtype": "Currency",
			"options": "currency",
			"width": 110,
		},
		{"fieldname": "sync_log", "label": _("Sync Log"), "fieldtype": "Link", "options": LOG, "width": 110},
		{"fieldname": "sync_status", "label": _("Sync Status"), "fieldtype": "Data", "width": 90},
		{"fieldname": "needs_look", "label": _("Needs a Look"), "fieldtype": "Check", "hidden": 1},
	]


def received_orders(from_date, to_date) -> list[dict]:
	logs = frappe.db.sql(
		f"""select log.name, log.status, log.storefront_id, log.request_payload, log.creation,
			so.name as sales_order, so.docstatus, so.status as so_status, so.grand_total,
			so.currency as so_currency, so.transaction_date
		from `tab{LOG}` log
		left join `tabSales Order` so on so.ecommerce_order_id = log.storefront_id
		where log.direction = 'Inbound' and log.entity = 'Order' and log.idempotency_key is not null
			and date(log.creation) between %(from)s and %(to)s""",
		{"from": from_date, "to": to_date},
		as_dict=True,
	)
	after = order_money([log.sales_order for log in logs if log.sales_order])
	return [_row_for_log(log, after) for log in logs]


def _row_for_log(log, after: dict) -> dict:
	payload = _json(log.request_payload)
	total = _money(payload.get("total"))
	payment = payload.get("payment") if isinstance(payload.get("payment"), dict) else {}
	paid = _money(payment.get("amount")) if payment.get("status") == "paid" else Decimal("0")
	if payment.get("status") == "paid" and payment.get("amount") is None:
		paid = total
	row = {
		"date": _order_date(payload, log),
		"order_id": log.storefront_id,
		"currency": payload.get("currency") or log.so_currency,
		"storefront_total": flt(total),
		"paid_on_storefront": flt(paid),
		"sync_log": log.name,
		"sync_status": log.status,
		"sales_order": log.sales_order,
		"sales_order_status": _("Cancelled") if log.docstatus == 2 else log.so_status,
		"grand_total": flt(log.grand_total) if log.sales_order else None,
		"payment_recorded": after[log.sales_order]["paid"] if log.sales_order else None,
		"credited": after[log.sales_order]["credited"] if log.sales_order else None,
		"refunded": after[log.sales_order]["refunded"] if log.sales_order else None,
	}
	row["difference"] = flt(Decimal(str(log.grand_total or 0)) - total) if log.sales_order else None
	row["result"], row["needs_look"] = _result(log, total, paid, after.get(log.sales_order))
	return row


def _result(log, total: Decimal, paid: Decimal, after: dict | None) -> tuple[str, int]:
	"""The row's verdict and whether it needs a look."""
	if not log.sales_order:
		return _("No Sales Order ({0})").format(_(log.status)), 1
	if after["returns_held"]:
		return _("Return waits for a person"), 1
	if log.docstatus == 2:
		return _("Cancelled"), 1
	if Decimal(str(log.grand_total)).quantize(CENT) != total.quantize(CENT):
		return _("Total mismatch"), 1
	if paid and Decimal(str(after["paid"])).quantize(CENT) < paid.quantize(CENT):
		return _("Payment not recorded"), 1
	if after["refunded"] or after["credited"]:
		# Settled by the bridge: shown, but nothing to look at.
		return _("Returned / refunded"), 0
	return OK, 0


def storefront_orders_not_received(from_date, to_date, received: set[str]) -> tuple[list[dict], str | None]:
	"""Orders in the storefront's feed for the period that the bridge has no record of."""
	from ecommerce_bridge.inbound.order import as_utc
	from ecommerce_bridge.outbound.client import StorefrontError
	from ecommerce_bridge.settings import make_client

	missing = []
	try:
		since = as_utc(get_datetime(from_date)).isoformat()
		for order in make_client().pages("/v1/orders", "orders", {"updated_since": since, "limit": 500}):
			order_id = str(order.get("order_id") or "")
			created = _order_date(order, None)
			if order_id and order_id not in received and from_date <= created <= to_date:
				missing.append(
					{
						"date": created,
						"order_id": order_id,
						"currency": order.get("currency"),
						"storefront_total": flt(_money(order.get("total"))),
						"result": _("Missing in ERPNext"),
						"needs_look": 1,
					}
				)
	except (StorefrontError, frappe.ValidationError) as exc:
		return missing, _("The storefront could not be asked for its orders: {0}").format(exc)
	return missing, None


def _order_date(payload: dict, log):
	try:
		return getdate(get_datetime(payload["created_at"]))
	except (KeyError, TypeError, ValueError):
		return getdate(log.creation) if log else getdate()


def _json(raw) -> dict:
	try:
		value = json.loads(raw or "{}")
	except ValueError:
		return {}
	return value if isinstance(value, dict) else {}


def _money(value) -> Decimal:
	try:
		return Decimal(str(value)) if value is not None else Decimal("0")
	except InvalidOperation:
		return Decimal("0")


def chart(rows: list[dict]) -> dict | None:
	days = sorted({row["date"] for row in rows})
	if not days:
		return None
	received = [sum(1 for row in rows if row["date"] == day) for day in days]
	with_order = [sum(1 for row in rows if row["date"] == day and row.get("sales_order")) for day in days]
	return {
		"data": {
			"labels": [frappe.format(day, {"fieldtype": "Date"}) for day in days],
			"datasets": [
				{"name": _("Storefront orders"), "values": received},
				{"name": _("Sales Orders"), "values": with_order},
			],
		},
		"type": "bar",
	}


def summary(rows: list[dict]) -> list[dict]:
	problems = sum(1 for row in rows if row["needs_look"])
	return [
		{"label": _("Storefront Orders"), "value": len(rows), "datatype": "Int"},
		{
			"label": _("With Sales Order"),
			"value": sum(1 for r in rows if r.get("sales_order")),
			"datatype": "Int",
		},
		{
			"label": _("Need a Look"),
			"value": problems,
			"datatype": "Int",
			"indicator": "Red" if problems else "Green",
		},
	]
