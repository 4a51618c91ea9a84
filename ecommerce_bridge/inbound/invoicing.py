"""Invoicing per Settings: the Sales Invoice made and submitted when a storefront order is paid, or when
it is delivered, with the storefront's advance payment allocated so that the invoice shows as paid.

Off by default (Settings > Auto Invoice = Never). "When Paid" invoices the whole order in the job that
records the payment. "When Delivered" invoices each submitted Delivery Note: the Delivery Note's
transaction only writes a Sync Log row (durable, retried like any inbound work) and the invoice is made in
a background job after commit, so a failing invoice never blocks the warehouse. Each invoice carries a
unique key, so it is made once however often the work is retried.

ERPNext copies an order's fixed-amount charges (shipping, taxes as sent) whole into every partial
invoice; here each invoice takes its share instead: shipping goes with the first invoice, taxes and the
order discount in proportion to the goods, and the last invoice takes what is left, so the invoices of an
order add up to its grand total to the cent.
"""

import frappe
from frappe import _
from frappe.utils import flt

from ecommerce_bridge.inbound.order import enqueue_log, order_key
from ecommerce_bridge.settings import get_settings, pillar_enabled
from ecommerce_bridge.sync_log import new_log, plain_error

WHEN_PAID = "When Paid"
WHEN_DELIVERED = "When Delivered"


def invoice_paid_order(so) -> list[str]:
	"""Called when a storefront payment was recorded: invoice what is not invoiced yet. An invoice that
	cannot be made never holds the order back: the Sales Order and payment stand, and the note returned
	asks an accountant to look (a retry of the log makes the invoice once the cause is fixed)."""
	from erpnext.selling.doctype.sales_order.sales_order import make_sales_invoice

	if get_settings().auto_invoice != WHEN_PAID or flt(so.per_billed) >= 100:
		return []
	frappe.db.savepoint("ecommerce_paid_invoice")
	try:
		submit_invoice(
			make_sales_invoice(so.name, ignore_permissions=True),
			f"{order_key(so.ecommerce_order_id)}:invoice",
		)
	except frappe.ValidationError as exc:
		frappe.db.rollback(save_point="ecommerce_paid_invoice")
		frappe.clear_messages()
		return [
			_("The Sales Invoice could not be made: {0} Fix the cause, then retry this log.").format(
				plain_error(exc)
			)
		]
	return []


def delivery_submitted(doc, method=None):
	"""Delivery Note on_submit: when invoicing follows delivery, record the work for after commit."""
	if doc.is_return or get_settings().auto_invoice != WHEN_DELIVERED or not pillar_enabled("orders"):
		return
	order_ids = storefront_orders({row.against_sales_order for row in doc.items})
	if not order_ids:
		return
	log = new_log(
		"Internal",
		"Invoice",
		request_payload={"delivery_note": doc.name},
		storefront_id=order_ids[0],
		reference_doctype="Delivery Note",
		reference_name=doc.name,
		idempotency_key=f"invoice:{doc.name}",
	)
	enqueue_log(log.name, "Invoice")


def storefront_orders(sales_orders) -> list[str]:
	names = [name for name in sales_orders if name]
	if not names:
		return []
	return frappe.get_all(
		"Sales Order",
		filters={"name": ("in", names), "ecommerce_order_id": ("is", "set")},
		pluck="ecommerce_order_id",
	)


def process_invoice(log_name: str) -> None:
	from ecommerce_bridge.inbound.order import run_logged

	run_logged(log_name, _invoice_delivery)


def _invoice_delivery(payload: dict, log_name: str) -> dict:
	from erpnext.stock.doctype.delivery_note.delivery_note import make_sales_invoice

	delivery_note = payload["delivery_note"]
	# Its Sales Orders are locked before anything is read (locking reads take no snapshot): invoices
	# and returns of one order are made one after the other, each seeing what the one before billed.
	orders = frappe.db.sql_list(
		"""select distinct against_sales_order from `tabDelivery Note Item`
		where parent = %s and ifnull(against_sales_order, '') != '' lock in share mode""",
		delivery_note,
	)
	for name in sorted(orders):
		frappe.db.get_value("Sales Order", name, "name", for_update=True)
	if frappe.db.get_value("Delivery Note", delivery_note, "docstatus") != 1:
		return {"status": "Skipped", "error": _("Delivery Note {0} is not submitted.").format(delivery_note)}
	if frappe.db.get_value("Delivery Note", delivery_note, "per_billed") >= 100:
		return {
			"status": "Skipped",
			"error": _("Delivery Note {0} is invoiced already.").format(delivery_note),
		}
	invoice = submit_invoice(make_sales_invoice(delivery_note), f"invoice:{delivery_note}")
	return {"reference_doctype": "Sales Invoice", "reference_name": invoice}


def submit_invoice(si, key: str) -> str:
	"""Insert and submit ``si`` under the unique ``key``; a key already used answers its invoice."""
	existing = frappe.db.get_value("Sales Invoice", {"ecommerce_invoice_key": key}, "name")
	if existing:
		return existing
	si.ecommerce_invoice_key = key
	si.allocate_advances_automatically = 1
	si.flags.ignore_permissions = True
	share_order_charges(si)
	frappe.db.savepoint("ecommerce_invoice")
	try:
		si.insert()
	except (frappe.UniqueValidationError, frappe.DuplicateEntryError):
		frappe.db.rollback(save_point="ecommerce_invoice")
		frappe.clear_messages()
		existing = frappe.db.get_value(
			"Sales Invoice", {"ecommerce_invoice_key": key}, "name", for_update=True
		)
		if not existing:
			raise
		return existing
	si.submit()
	return si.name


def share_order_charges(si) -> None:
	"""Give this invoice its share of the order's fixed charges and discount (see the module's note)."""
	so_name = next((row.sales_order for row in si.items if row.sales_order), None)
	if not so_name:
		return
	so = frappe.get_doc("Sales Order", so_name)
	billed = frappe.get_all(
		"Sales Invoice",
		filters={"docstatus": 1, "is_return": 0, "name": ("in", _invoices_of(so.name))},
		fields=["name", "discount_amount"],
	)
	billed_charges = {}
	for tax in frappe.get_all(
		"Sales Taxes and Charges",
		filters={"parenttype": "Sales Invoice", "parent": ("in", [b.name for b in billed] or [""])},
		fields=["account_head", "tax_amount"],
	):
		billed_charges[tax.account_head] = billed_charges.get(tax.account_head, 0) + flt(tax.tax_amount)
	ordered = {row.name: flt(row.qty) for row in so.items}
	billed_qty = {row.name: flt(row.billed_qty) for row in _billed_rows(so.name)}
	this_qty = {}
	for row in si.items:
		this_qty[row.so_detail] = this_qty.get(row.so_detail, 0) + flt(row.qty)
	last = all(billed_qty.get(name, 0) + this_qty.get(name, 0) >= qty - 1e-9 for name, qty in ordered.items())
	share = sum(flt(row.qty) * flt(row.rate) for row in si.items) / (flt(so.total) or 1)
	shipping = get_settings().shipping_account

	def portion(order_amount, billed_amount, first_only=False):
		if last:
			return flt(order_amount - billed_amount, 2)
		if first_only:
			return flt(order_amount, 2) if not billed_amount else 0
		return flt(order_amount * share, 2)

	taxes = []
	for tax in si.get("taxes") or []:
		if tax.charge_type == "Actual":
			order_amount = sum(flt(t.tax_amount) for t in so.taxes if t.account_head == tax.account_head)
			tax.tax_amount = portion(
				order_amount, billed_charges.get(tax.account_head, 0), tax.account_head == shipping
			)
			if not tax.tax_amount:
				continue
		taxes.append(tax)
	si.set("taxes", taxes)
	if so.discount_amount:
		si.discount_amount = portion(so.discount_amount, sum(flt(b.discount_amount) for b in billed))


def _invoices_of(so_name: str) -> list[str]:
	return frappe.get_all(
		"Sales Invoice Item", filters={"sales_order": so_name, "docstatus": 1}, pluck="parent", distinct=True
	) or [""]


def _billed_rows(so_name: str) -> list[dict]:
	return frappe.db.sql(
		"""select sii.so_detail as name, sum(sii.qty) as billed_qty
		from `tabSales Invoice Item` sii join `tabSales Invoice` si on si.name = sii.parent
		where si.docstatus = 1 and si.is_return = 0 and sii.sales_order = %s group by sii.so_detail""",
		so_name,
		as_dict=True,
	)
