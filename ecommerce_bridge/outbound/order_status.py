"""The order's life after checkout, told to the storefront: status, shipments with tracking, invoicing,
payment and returns of every storefront order.

Same mechanism as stock: hooks on the documents that change an order (its Sales Order, Delivery Notes,
Sales Invoices, Payment Entries) record the storefront order id in the outbox, in the same transaction;
the flush job sends one snapshot per order, read after commit and versioned, so two shipments make two
pushes, a burst makes one, and a late delivery never overwrites a newer state. A cancelled Delivery Note
is simply absent from the next snapshot: its shipment is retracted. Carrier and tracking number come from
the Delivery Note's own fields, else from a submitted ERPNext Shipment that ships it.
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


def shipment_changed(doc, method=None):
	"""An ERPNext Shipment carries the tracking of the Delivery Notes it ships (set by a carrier
	integration with db_set too, hence on_change)."""
	notes = [row.delivery_note for row in doc.get("shipment_delivery_note") or [] if row.delivery_note]
	if notes:
		record_orders(
			frappe.get_all(
				"Delivery Note Item",
				filters={"parent": ("in", notes)},
				pluck="against_sales_order",
				distinct=True,
			)
		)


def invoice_changed(doc, method=None):
	record_orders(row.sales_order for row in doc.items)


def payment_changed(doc, method=None):
	if not pillar_enabled("orders"):
		return
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
	"""One snapshot per storefront order, read in a handful of queries for the whole batch; orders
	without a Sales Order are omitted."""
	from ecommerce_bridge.inbound.returns import order_money

	orders = frappe.get_all(
		"Sales Order",
		filters={"ecommerce_order_id": ("in", [row.record_key for row in rows])},
		fields=[
			"name",
			"ecommerce_order_id",
			"docstatus",
			"status",
			"per_billed",
			"grand_total",
		],
	)
	if not orders:
		return []
	names = [so.name for so in orders]
	lines = defaultdict(list)
	for line in frappe.get_all(
		"Sales Order Item",
		filters={"parent": ("in", names)},
		fields=["parent", "name", "item_code", "qty", "ecommerce_line_id"],
		order_by="idx",
	):
		lines[line.parent].append(line)
	deliveries = defaultdict(list)
	for row in frappe.db.sql(
		"""select dni.against_sales_order as sales_order, dni.so_detail, dni.qty, dn.name, dn.is_return,
			dn.posting_date,
			coalesce(nullif(dn.ecommerce_carrier, ''), shipment.carrier) as carrier,
			coalesce(nullif(dn.ecommerce_tracking_number, ''), shipment.awb_number) as tracking_number,
			shipment.tracking_url
		from `tabDelivery Note Item` dni join `tabDelivery Note` dn on dn.name = dni.parent
		left join (
			select sdn.delivery_note, max(s.carrier) as carrier, max(s.awb_number) as awb_number,
				max(s.tracking_url) as tracking_url
			from `tabShipment Delivery Note` sdn join `tabShipment` s on s.name = sdn.parent
			where s.docstatus = 1 and sdn.delivery_note in (
				select parent from `tabDelivery Note Item` where against_sales_order in %(names)s)
			group by sdn.delivery_note
		) shipment on shipment.delivery_note = dn.name
		where dn.docstatus = 1 and dni.against_sales_order in %(names)s
		order by dn.posting_date, dn.posting_time, dn.creation, dni.idx""",
		{"names": tuple(names)},
		as_dict=True,
	):
		deliveries[row.sales_order].append(row)
	money = order_money(names)
	version = {row.record_key: row.version for row in rows}
	return [
		{
			**order_snapshot(so, lines[so.name], deliveries[so.name], money[so.name]),
			"version": version[so.ecommerce_order_id],
		}
		for so in orders
	]


def order_snapshot(so, lines: list[dict], deliveries: list[dict], money: dict) -> dict:
	"""What the storefront is told of one order: its state, each line's progress, each shipment."""
	by_line = {line.name: line for line in lines}
	shipped, returned = defaultdict(float), defaultdict(float)
	shipments = {}
	for row in deliveries:
		(returned if row.is_return else shipped)[row.so_detail] += abs(flt(row.qty))
		if not row.is_return:
			shipment = shipments.setdefault(
				row.name,
				{
					"shipment_id": row.name,
					"carrier": row.carrier or None,
					"tracking_number": row.tracking_number or None,
					"tracking_url": row.tracking_url or None,
					"shipped_on": str(row.posting_date),
					"lines": [],
				},
			)
			shipment["lines"].append(_line(by_line.get(row.so_detail), abs(flt(row.qty))))
	everything_returned = all(returned[line.name] >= flt(line.qty) for line in lines)
	return {
		"order_id": so.ecommerce_order_id,
		"sales_order": so.name,
		"status": "returned" if everything_returned else storefront_status(so, lines, shipped),
		"billing_status": "cancelled" if so.docstatus == 2 else _billing_status(so.per_billed),
		"grand_total": f"{flt(so.grand_total):.2f}",
		"paid_amount": f"{money['paid']:.2f}",
		"refunded_amount": f"{money['refunded']:.2f}",
		"lines": [
			{
				**_line(line, flt(line.qty)),
				"shipped_qty": shipped[line.name],
				"returned_qty": returned[line.name],
			}
			for line in lines
		],
		"shipments": list(shipments.values()),
	}


def storefront_status(so, lines: list[dict], shipped: dict) -> str:
	"""The order's state in the storefront's words. Shipping is counted from the Delivery Notes, not
	from ERPNext's delivered percentage, which a return lowers again."""
	if so.docstatus == 2:
		return "cancelled"
	if so.status == "Closed":
		return "closed"
	if so.status == "On Hold":
		return "on_hold"
	ordered = sum(flt(line.qty) for line in lines)
	sent = sum(min(shipped[line.name], flt(line.qty)) for line in lines)
	if sent and sent >= ordered - 1e-9:
		return "shipped"
	return "partially_shipped" if sent else "processing"


def _billing_status(per_billed) -> str:
	return (
		"invoiced" if flt(per_billed) >= 100 else "partly_invoiced" if flt(per_billed) > 0 else "not_invoiced"
	)


def _line(line, qty: float) -> dict:
	return {
		"line_id": line.ecommerce_line_id if line else None,
		"sku": line.item_code if line else None,
		"qty": qty,
	}
