"""The order's life after checkout, told to the storefront: status, shipments with tracking, invoicing,
payment and returns of every storefront order.

Same mechanism as stock: hooks on the documents that change an order (its Sales Order, Delivery Notes,
Sales Invoices, Payment Entries) record the storefront order id in the outbox, in the same transaction;
the flush job sends one snapshot per order, read after commit and versioned, so two shipments make two
pushes, a burst makes one, and a late delivery never overwrites a newer state. A cancelled Delivery Note
is simply absent from the next snapshot: its shipment is retracted.
"""

from collections import defaultdict

import frappe
from frappe.utils import flt

from ecommerce_bridge.inbound.order import order_id_of_payment_key
from ecommerce_bridge.outbound.capture import record
from ecommerce_bridge.settings import pillar_enabled


def record_orders(sales_orders) -> None:
	"""Record the storefront orders behind ``sales_orders`` (names; others are ignored)."""
	if not pillar_enabled("orders"):
		return
	names = sorted({name for name in sales_orders if name})
	if names:
		record(
			"Order",
			frappe.get_all(
				"Sales Order",
				filters={"name": ("in", names), "ecommerce_order_id": ("is", "set")},
				pluck="ecommerce_order_id",
			),
		)


# ---- doc_events ---------------------------------------------------------------------------------


def sales_order_changed(doc, method=None):
	# Fires on save, submit, cancel and every status ERPNext sets with db_set (delivered, billed, closed).
	if doc.get("ecommerce_order_id") and doc.docstatus > 0:
		record_orders([doc.name])


def delivery_changed(doc, method=None):
	record_orders(row.against_sales_order for row in doc.items)


def invoice_changed(doc, method=None):
	record_orders(row.sales_order for row in doc.items)


def payment_changed(doc, method=None):
	orders = [ref.reference_name for ref in doc.references if ref.reference_doctype == "Sales Order"]
	invoices = [ref.reference_name for ref in doc.references if ref.reference_doctype == "Sales Invoice"]
	if invoices:
		orders += frappe.get_all(
			"Sales Invoice Item", filters={"parent": ("in", invoices)}, pluck="sales_order", distinct=True
		)
	order_id = order_id_of_payment_key(doc.get("ecommerce_payment_key"))
	if order_id:
		# A refund booked by the bridge may reference no document; its key names the order.
		orders += frappe.get_all("Sales Order", filters={"ecommerce_order_id": order_id}, pluck="name")
	record_orders(orders)


# ---- what is sent -------------------------------------------------------------------------------


def order_entries(rows) -> list[dict]:
	"""One snapshot per storefront order; orders without a Sales Order are omitted."""
	entries = []
	for row in rows:
		so_name = frappe.db.get_value("Sales Order", {"ecommerce_order_id": row.record_key}, "name")
		if so_name:
			entries.append({**order_snapshot(frappe.get_doc("Sales Order", so_name)), "version": row.version})
	return entries


def order_snapshot(so) -> dict:
	from ecommerce_bridge.inbound.returns import paid_and_refunded

	shipped = defaultdict(float)
	returned = defaultdict(float)
	shipments = []
	for dn in frappe.get_all(
		"Delivery Note",
		filters={"name": ("in", _delivery_notes(so.name)), "docstatus": 1},
		fields=["name", "is_return", "posting_date", "ecommerce_carrier", "ecommerce_tracking_number"],
		order_by="posting_date, posting_time, creation",
	):
		lines = []
		for item in frappe.get_all(
			"Delivery Note Item",
			filters={"parent": dn.name, "against_sales_order": so.name},
			fields=["so_detail", "qty"],
			order_by="idx",
		):
			(returned if dn.is_return else shipped)[item.so_detail] += abs(flt(item.qty))
			lines.append((item.so_detail, abs(flt(item.qty))))
		if not dn.is_return:
			shipments.append(
				{
					"shipment_id": dn.name,
					"carrier": dn.ecommerce_carrier or None,
					"tracking_number": dn.ecommerce_tracking_number or None,
					"shipped_on": str(dn.posting_date),
					"lines": [_line(so, so_detail, qty) for so_detail, qty in lines],
				}
			)
	paid, refunded = paid_and_refunded(so)
	everything_returned = all(returned[row.name] >= flt(row.qty) for row in so.items)
	return {
		"order_id": so.ecommerce_order_id,
		"sales_order": so.name,
		"status": "returned" if everything_returned else storefront_status(so),
		"billing_status": "cancelled" if so.docstatus == 2 else _billing_status(so.per_billed),
		"grand_total": f"{flt(so.grand_total):.2f}",
		"paid_amount": f"{paid:.2f}",
		"refunded_amount": f"{refunded:.2f}",
		"lines": [
			{
				**_line(so, row.name, flt(row.qty)),
				"shipped_qty": shipped[row.name],
				"returned_qty": returned[row.name],
			}
			for row in so.items
		],
		"shipments": shipments,
	}


def storefront_status(so) -> str:
	"""The order's state in the storefront's words."""
	if so.docstatus == 2:
		return "cancelled"
	if so.status == "Closed":
		return "closed"
	if so.status == "On Hold":
		return "on_hold"
	if flt(so.per_delivered) >= 100:
		return "shipped"
	if flt(so.per_delivered) > 0:
		return "partially_shipped"
	return "processing"


def _billing_status(per_billed) -> str:
	return (
		"invoiced" if flt(per_billed) >= 100 else "partly_invoiced" if flt(per_billed) > 0 else "not_invoiced"
	)


def _line(so, so_detail: str, qty: float) -> dict:
	row = next((r for r in so.items if r.name == so_detail), None)
	return {
		"line_id": row.get("ecommerce_line_id") if row else None,
		"sku": row.item_code if row else None,
		"qty": qty,
	}


def _delivery_notes(so_name: str) -> list[str]:
	return frappe.get_all(
		"Delivery Note Item", filters={"against_sales_order": so_name}, pluck="parent", distinct=True
	) or [""]
