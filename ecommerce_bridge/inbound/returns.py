"""Where goods and money come back: storefront returns, refunds, and cancellations after delivery.

``process_return`` runs in a background job for a Sync Log row that ``api.ingest_return`` committed, in
one transaction: the return Delivery Notes (restocking the goods), the credit notes against the invoices
and the refund Payment Entry all exist, or none does. The Sync Log's idempotency key (the storefront's
return id) is a unique index, so a return is booked once however often it is delivered.

What a return may take back is counted from ERPNext's own documents, never from the storefront's word:
a line can give back what was delivered and not yet returned, and a refund what was paid and not yet
refunded. Anything beyond that (or a line never delivered) is held in the Sync Log for an accountant.
"""

from collections import defaultdict

import frappe
from frappe import _
from frappe.utils import flt, getdate, nowdate

from ecommerce_bridge.contract.models import Refund, ReturnIn
from ecommerce_bridge.db import escape_like
from ecommerce_bridge.inbound.order import BridgeError, order_id_of_payment_key, order_key
from ecommerce_bridge.settings import get_settings
from ecommerce_bridge.skus import normalize_sku
from ecommerce_bridge.sync_log import LOG, NeedsPerson

EPSILON = 1e-9


def process_return(log_name: str) -> None:
	from ecommerce_bridge.inbound.order import run_logged

	run_logged(log_name, _process_return)


def _process_return(payload: dict, log_name: str) -> dict:
	request = ReturnIn.model_validate(payload)
	so = sales_order_for(request.order_id)
	wanted = match_lines(so, request)
	booked = reverse(so, wanted, wanted, request.refund, request.return_id, request.reason)
	close_when_settled(so)
	return {
		"reference_doctype": "Sales Order",
		"reference_name": so.name,
		"response": booked,
	}


def sales_order_for(order_id: str):
	"""The Sales Order of a storefront order, locked; waits (retries) while it is still being created.

	The lock is this transaction's first read, so two returns of one order are booked one after the
	other, the second seeing what the first took back."""
	name = frappe.db.get_value("Sales Order", {"ecommerce_order_id": order_id}, "name", for_update=True)
	if name:
		return frappe.get_doc("Sales Order", name)
	if frappe.db.get_value(LOG, {"idempotency_key": order_key(order_id)}, "status") in (
		"Queued",
		"Processing",
		"Failed",
	):
		raise BridgeError(_("Order {0} is not created yet; this is retried after it.").format(order_id))
	raise NeedsPerson(
		_("No Sales Order exists for storefront order {0}, so nothing can be returned against it.").format(
			order_id
		)
	)


# ---- what ERPNext says was delivered, returned, billed and credited ------------------------------


def _delivered(so_name: str) -> list[dict]:
	"""Delivery Note rows of the order with what each can still take back, oldest first."""
	return frappe.db.sql(
		"""select dni.name, dni.parent, dni.so_detail, dni.qty,
			dni.qty + ifnull((select sum(r.qty) from `tabDelivery Note Item` r
				join `tabDelivery Note` rp on rp.name = r.parent and rp.docstatus = 1 and rp.is_return = 1
				where r.dn_detail = dni.name), 0) as returnable
		from `tabDelivery Note Item` dni join `tabDelivery Note` dn on dn.name = dni.parent
		where dn.docstatus = 1 and dn.is_return = 0 and dni.against_sales_order = %s
		order by dn.posting_date, dn.posting_time, dn.creation, dni.idx""",
		so_name,
		as_dict=True,
	)


def _billed(so_name: str) -> list[dict]:
	"""Sales Invoice rows of the order with what each can still credit, oldest first."""
	return frappe.db.sql(
		"""select sii.name, sii.parent, sii.so_detail, sii.qty,
			sii.qty + ifnull((select sum(r.qty) from `tabSales Invoice Item` r
				join `tabSales Invoice` rp on rp.name = r.parent and rp.docstatus = 1 and rp.is_return = 1
				where r.sales_invoice_item = sii.name), 0) as creditable
		from `tabSales Invoice Item` sii join `tabSales Invoice` si on si.name = sii.parent
		where si.docstatus = 1 and si.is_return = 0 and sii.sales_order = %s
		order by si.posting_date, si.creation, sii.idx""",
		so_name,
		as_dict=True,
	)


def _remaining(rows: list[dict], field: str) -> dict[str, float]:
	per_line = defaultdict(float)
	for row in rows:
		per_line[row.so_detail] += flt(row[field])
	return per_line


def match_lines(so, request: ReturnIn) -> dict[str, float]:
	"""Returned quantities per Sales Order row; a line that cannot be returned is held for a person."""
	returnable = _remaining(_delivered(so.name), "returnable")
	wanted: dict[str, float] = defaultdict(float)
	for position, line in enumerate(request.lines, start=1):
		rows = [
			row
			for row in so.items
			if (line.line_id and row.get("ecommerce_line_id") == line.line_id)
			or (not line.line_id and normalize_sku(row.item_code) == normalize_sku(line.sku))
		]
		if not rows:
			raise NeedsPerson(
				_("Return line {0}: order {1} has no line {2} (SKU {3}).").format(
					position, request.order_id, line.line_id or "-", line.sku
				)
			)
		qty = float(line.qty)
		for row in rows:
			take = min(qty, returnable[row.name] - wanted[row.name])
			if take > EPSILON:
				wanted[row.name] += take
				qty -= take
		if qty > EPSILON:
			can = sum(returnable[row.name] for row in rows)
			raise NeedsPerson(
				_(
					"Return line {0}: {1} of SKU {2} come back, but only {3} were delivered and not returned "
					"yet. Nothing was booked: check the return with the storefront, book what really came "
					"back by hand, and mark this log as dealt with."
				).format(position, f"{line.qty:g}", line.sku, f"{can:g}")
			)
	return dict(wanted)


# ---- booking it --------------------------------------------------------------------------------


def reverse(
	so, restock: dict[str, float], credit: dict[str, float], refund: Refund | None, return_id, reason
):
	"""Book a return: restock ``restock`` (per Sales Order row), credit ``credit`` where it was invoiced,
	and record ``refund``. Returns what was made, for the Sync Log."""
	made = {"return_delivery_notes": [], "credit_notes": [], "refund": None}
	remark = _("Storefront return {0} of order {1}{2}").format(
		return_id, so.ecommerce_order_id, f": {reason}" if reason else ""
	)
	for source, quantities in _allocate(_delivered(so.name), "returnable", restock).items():
		made["return_delivery_notes"].append(
			_return_doc("Delivery Note", source, quantities, "dn_detail", return_id, remark)
		)
	for source, quantities in _allocate(_billed(so.name), "creditable", credit).items():
		made["credit_notes"].append(
			_return_doc("Sales Invoice", source, quantities, "sales_invoice_item", return_id, remark)
		)
	if refund:
		made["refund"] = record_refund(so, refund, return_id, remark, made["credit_notes"])
	return made


def _allocate(rows: list[dict], field: str, wanted: dict[str, float]) -> dict[str, dict[str, float]]:
	"""Spread the wanted quantity of each Sales Order row over its source rows, oldest first."""
	left = dict(wanted)
	by_source: dict[str, dict[str, float]] = defaultdict(dict)
	for row in rows:
		take = min(left.get(row.so_detail, 0), flt(row[field]))
		if take > EPSILON:
			by_source[row.parent][row.name] = take
			left[row.so_detail] -= take
	return by_source


def _return_doc(doctype: str, source: str, quantities: dict, link_field: str, return_id: str, remark: str):
	"""A submitted return (Delivery Note) or credit note (Sales Invoice) of ``quantities`` of ``source``."""
	from erpnext.controllers.sales_and_purchase_return import make_return_doc

	doc = make_return_doc(doctype, source)
	original = frappe.get_doc(doctype, source)
	# ERPNext offers what is left to return of each row (as a negative quantity): taking all of it
	# completes the return of this document.
	completes = all(abs(quantities.get(row.get(link_field), 0) + flt(row.qty)) < EPSILON for row in doc.items)
	rows = []
	for row in doc.items:
		qty = quantities.get(row.get(link_field))
		if not qty:
			continue
		row.qty = -qty
		row.stock_qty = -qty * flt(row.conversion_factor or 1)
		if doctype == "Delivery Note":
			row.warehouse = _restock_warehouse(row.warehouse)
		rows.append(row)
	doc.set("items", rows)
	# A credit note settles against its invoice, not against the order's advance payment.
	doc.set("advances", [])
	doc.allocate_advances_automatically = 0
	_share_charges(doc, original, completes)
	doc.ecommerce_return_id = return_id
	doc.posting_date = nowdate()
	doc.remarks = remark
	doc.flags.ignore_permissions = True
	doc.insert()
	doc.submit()
	return doc.name


def _restock_warehouse(original: str) -> str:
	return get_settings().return_warehouse or original


def _share_charges(doc, original, completes: bool) -> None:
	"""A partial return gives back its share of the taxes and of the order discount, and no shipping (the
	parcel did travel); the return that completes the document gives back everything still left of them,
	shipping included, so that all returns of a document add up to it."""
	earlier = frappe.get_all(
		doc.doctype,
		filters={"return_against": original.name, "docstatus": 1},
		fields=["name", "discount_amount"],
	)
	given_back = defaultdict(float)
	for tax in frappe.get_all(
		"Sales Taxes and Charges",
		filters={"parenttype": doc.doctype, "parent": ("in", [e.name for e in earlier] or [""])},
		fields=["account_head", "tax_amount"],
	):
		given_back[tax.account_head] += flt(tax.tax_amount)
	share = sum(abs(flt(row.qty)) * flt(row.rate) for row in doc.items) / (flt(original.total) or 1)
	shipping = get_settings().shipping_account
	taxes = []
	for tax in doc.get("taxes") or []:
		if tax.charge_type == "Actual":
			# The return's rows start as the whole charge, negated; earlier returns' are negative too.
			if completes:
				tax.tax_amount = flt(tax.tax_amount - given_back[tax.account_head], 2)
			elif tax.account_head == shipping:
				continue
			else:
				tax.tax_amount = flt(tax.tax_amount * share, 2)
			if not tax.tax_amount:
				continue
		taxes.append(tax)
	doc.set("taxes", taxes)
	if doc.get("discount_amount"):
		whole_discount = doc.discount_amount
		given = sum(flt(e.discount_amount) for e in earlier)
		doc.discount_amount = flt(whole_discount - given if completes else whole_discount * share, 2)


# ---- money back --------------------------------------------------------------------------------


def order_money(sales_orders: list[str]) -> dict[str, dict]:
	"""Per Sales Order: what was paid for it, credited by credit notes, refunded by the bridge, and how
	many returns or cancellations wait for a person. A handful of queries for any number of orders."""
	after = {
		name: {"paid": 0.0, "credited": 0.0, "refunded": 0.0, "returns_held": 0} for name in sales_orders
	}
	if not sales_orders:
		return after
	# Payments stay counted when an advance is allocated to the order's invoice (its reference moves there).
	invoice_orders = dict(
		frappe.db.sql(
			"""select distinct parent, sales_order from `tabSales Invoice Item`
			where docstatus = 1 and sales_order in %(orders)s""",
			{"orders": tuple(sales_orders)},
		)
	)
	for reference, amount in frappe.db.sql(
		"""select per.reference_name, sum(per.allocated_amount) from `tabPayment Entry Reference` per
		join `tabPayment Entry` pe on pe.name = per.parent
		where pe.docstatus = 1 and pe.payment_type = 'Receive' and per.reference_name in %(names)s
		group by per.reference_name""",
		{"names": tuple(sales_orders) + tuple(invoice_orders)},
	):
		after[invoice_orders.get(reference, reference)]["paid"] += flt(amount)
	for row in frappe.db.sql(
		"""select si.name, -si.grand_total as credited, min(sii.sales_order) as sales_order
		from `tabSales Invoice` si join `tabSales Invoice Item` sii on sii.parent = si.name
		where si.docstatus = 1 and si.is_return = 1 and sii.sales_order in %(orders)s group by si.name""",
		{"orders": tuple(sales_orders)},
		as_dict=True,
	):
		after[row.sales_order]["credited"] += flt(row.credited)
	by_order_id = dict(
		frappe.get_all(
			"Sales Order",
			filters={"name": ("in", sales_orders)},
			fields=["ecommerce_order_id", "name"],
			as_list=1,
		)
	)
	# Refunds are found by their key's prefix: one range per order, or (for a report over many
	# orders) every refund the bridge booked.
	prefixes = [escape_like(refund_key_prefix(order_id)) + "%" for order_id in by_order_id]
	if len(prefixes) > 50:
		prefixes = ["order:%:refund:%"]
	refund_keys = " or ".join(["ecommerce_payment_key like %s"] * len(prefixes)) or "false"
	for key, amount in frappe.db.sql(
		f"""select ecommerce_payment_key, paid_amount from `tabPayment Entry`
		where docstatus = 1 and payment_type = 'Pay' and ({refund_keys})""",
		prefixes,
	):
		so = by_order_id.get(order_id_of_payment_key(key))
		if so:
			after[so]["refunded"] += flt(amount)
	for order_id in frappe.get_all(
		LOG,
		filters={
			"entity": ("in", ["Return", "Order Cancel"]),
			"status": "Failed",
			# Still retrying by itself is not yet a person's business.
			"next_retry_at": ("is", "not set"),
			"storefront_id": ("in", list(by_order_id)),
		},
		pluck="storefront_id",
	):
		after[by_order_id[order_id]]["returns_held"] += 1
	return after


def refund_key_prefix(order_id: str) -> str:
	return f"{order_key(order_id)}:refund:"


def record_refund(so, refund: Refund, return_id: str, remark: str, credit_notes: list[str]) -> str:
	"""A Payment Entry paying ``refund`` back to the customer, once (its key is a unique index)."""
	from erpnext.accounts.doctype.payment_entry.payment_entry import get_payment_entry
	from erpnext.accounts.party import get_party_account

	key = f"{refund_key_prefix(so.ecommerce_order_id)}{return_id}"
	existing = frappe.db.get_value("Payment Entry", {"ecommerce_payment_key": key, "docstatus": 1})
	if existing:
		return existing
	money = order_money([so.name])[so.name]
	paid, refunded = money["paid"], money["refunded"]
	amount = float(refund.amount)
	if amount > paid - refunded + 0.005:
		raise NeedsPerson(
			_(
				"The storefront refunded {0}, but only {1} of order {2} was paid and not refunded yet. "
				"Nothing was booked: check the refund with the payment gateway and book it by hand."
			).format(f"{amount:.2f}", f"{paid - refunded:.2f}", so.ecommerce_order_id)
		)
	mapping = next(
		(r for r in get_settings().payment_accounts if r.gateway.casefold() == refund.gateway.casefold()),
		None,
	)
	if not mapping:
		raise NeedsPerson(
			_(
				"Refunded through {0}, which has no account in Ecommerce Bridge Settings > Payment Gateway "
				"Accounts. Map the gateway, then retry this log."
			).format(refund.gateway)
		)
	owed = _invoice_owing_customer(so, credit_notes)
	if owed:
		# The refund settles what the credit note left owing to the customer (ERPNext counts a debt to
		# the customer as a negative amount); anything beyond it stays on the customer's account.
		owing = -flt(frappe.db.get_value("Sales Invoice", owed, "outstanding_amount"))
		pe = get_payment_entry(
			"Sales Invoice", owed, party_amount=-min(amount, owing), bank_account=mapping.account
		)
		pe.paid_amount = pe.received_amount = amount
	else:
		pe = frappe.new_doc("Payment Entry")
		pe.update(
			{
				"payment_type": "Pay",
				"company": so.company,
				"party_type": "Customer",
				"party": so.customer,
				"paid_from": mapping.account,
				"paid_to": get_party_account("Customer", so.customer, so.company),
				"paid_amount": amount,
				"received_amount": amount,
			}
		)
	pe.update(
		{
			"mode_of_payment": mapping.mode_of_payment,
			"reference_no": refund.transaction_id,
			"reference_date": getdate(),
			"ecommerce_payment_key": key,
			"remarks": remark + " " + _("refunded through {0}").format(refund.gateway),
		}
	)
	pe.flags.ignore_permissions = True
	pe.insert()
	pe.submit()
	return pe.name


def _invoice_owing_customer(so, credit_notes: list[str]) -> str | None:
	"""The credit note (or invoice) of this order that owes the customer money: outstanding below zero.
	ERPNext keeps a credit note's balance on the credit note itself unless told otherwise."""
	candidates = list(credit_notes)
	candidates += [frappe.db.get_value("Sales Invoice", name, "return_against") for name in credit_notes]
	candidates += frappe.get_all(
		"Sales Invoice Item", filters={"sales_order": so.name, "docstatus": 1}, pluck="parent", distinct=True
	)
	for name in candidates:
		if flt(frappe.db.get_value("Sales Invoice", name, "outstanding_amount")) < 0:
			return name
	return None


def close_when_settled(so) -> None:
	"""ERPNext counts returned units as undelivered again (and reserves them); a storefront return is
	not to be sent again. So an order whose every unit was delivered, and whose kept units are all
	invoiced, is closed after its return. One still to deliver or to invoice stays open (closing it would
	stop its invoicing)."""
	so.reload()
	if so.docstatus != 1 or so.status == "Closed":
		return
	delivered = _delivered(so.name)
	shipped, kept = _remaining(delivered, "qty"), _remaining(delivered, "returnable")
	billed = _remaining(_billed(so.name), "creditable")
	for row in so.items:
		if flt(row.qty) - shipped[row.name] > EPSILON or kept[row.name] - billed[row.name] > EPSILON:
			return
	so.update_status("Closed")


# ---- cancellation after delivery -----------------------------------------------------------------


def reverse_whole_order(so, refund: Refund | None, reason: str | None) -> dict:
	"""A storefront cancellation of an order that was delivered or invoiced: take back every delivered
	unit, credit every invoiced one, refund what the storefront refunded, and close the order."""
	restock = {k: v for k, v in _remaining(_delivered(so.name), "returnable").items() if v > EPSILON}
	credit = {k: v for k, v in _remaining(_billed(so.name), "creditable").items() if v > EPSILON}
	booked = reverse(so, restock, credit, refund, f"cancel-{so.ecommerce_order_id}", reason)
	so.reload()
	if so.status not in ("Closed", "Completed"):
		so.update_status("Closed")
	so.add_comment(
		"Comment",
		_("Cancelled by the storefront after delivery or invoicing: {0}").format(
			reason or _("no reason given")
		),
	)
	return booked
