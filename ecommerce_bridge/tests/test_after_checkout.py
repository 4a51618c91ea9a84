"""The order's life after checkout: shipments and status reach the storefront, invoices follow payment
or delivery, and returns, refunds and late cancellations land in the books.

Real Sales Orders from real checkouts, real Delivery Notes and invoices, the reference storefront over
real HTTP, the queued jobs run by an RQ worker.
"""

from decimal import Decimal

import frappe
from erpnext.selling.doctype.sales_order.sales_order import make_delivery_note
from frappe.utils import flt

from ecommerce_bridge.tests import utils
from ecommerce_bridge.tests.test_orders import CANCEL, OrderCase

RETURN = "ecommerce_bridge.api.ingest_return"
STATUS_PATH = "/v1/orders/status"


def paid(amount=None):
	return {
		"status": "paid",
		"gateway": "stripe",
		"transaction_id": f"ch_{frappe.generate_hash(length=8)}",
		"amount": amount,
	}


def return_request(payload, **fields) -> dict:
	"""A storefront return of the order ``payload`` with a fresh return id."""
	return {"return_id": f"R{frappe.generate_hash(length=8)}", "order_id": payload["order_id"], **fields}


class AfterCheckoutCase(OrderCase):
	auto_invoice = "Never"

	def setUp(self):
		settings = frappe.get_single("Ecommerce Bridge Settings")
		settings.auto_invoice = self.auto_invoice
		settings.return_warehouse = None
		settings.save(ignore_permissions=True)
		frappe.db.commit()

	def paid_order(self, qty=3, **overrides):
		"""A paid checkout of ``qty`` units at 20 with 5 shipping and 6 VAT, made into a Sales Order."""
		payload = utils.order_payload(
			[(self.sku, qty, 20)],
			shipping={"method": "Parcel", "amount": "5.00"},
			taxes=[{"code": "VAT", "amount": "6.00"}],
			**overrides,
		)
		payload["payment"] = paid(payload["total"])
		return payload, self.assertProcessed(self.checkout(payload))

	def deliver(self, so, qty, tracking=None, carrier="DHL"):
		note = make_delivery_note(so.name)
		for row in note.items:
			row.qty = qty
		note.ecommerce_carrier = carrier
		note.ecommerce_tracking_number = tracking
		note.insert()
		note.submit()
		frappe.db.commit()
		utils.run_queued_jobs()
		return note

	def send_return(self, payload, expect=202):
		"""Send a return (``return_request`` builds one) and run the worker; returns its Sync Log row."""
		response = self.web.call(RETURN, payload)
		self.assertEqual(response.status_code, expect, response.text[:1000])
		utils.run_queued_jobs()
		return frappe.get_doc("Ecommerce Sync Log", response.json()["message"]["log"])

	def storefront_order(self, order_id):
		return self.storefront.order_status[order_id]

	def invoices(self, so, is_return=0):
		return frappe.get_all(
			"Sales Invoice",
			filters={
				"name": (
					"in",
					frappe.get_all("Sales Invoice Item", filters={"sales_order": so.name}, pluck="parent"),
				),
				"docstatus": 1,
				"is_return": is_return,
			},
			fields=["name", "grand_total", "outstanding_amount", "ecommerce_invoice_key"],
			order_by="creation",
		)

	def return_notes(self, so):
		return frappe.get_all(
			"Delivery Note",
			filters={
				"name": (
					"in",
					frappe.get_all(
						"Delivery Note Item", filters={"against_sales_order": so.name}, pluck="parent"
					),
				),
				"docstatus": 1,
				"is_return": 1,
			},
			pluck="name",
		)

	def shop_qty(self):
		return flt(
			frappe.db.get_value("Bin", {"item_code": self.sku, "warehouse": utils.shop()}, "actual_qty")
		)


class TestShipments(AfterCheckoutCase):
	def test_two_shipments_reach_the_storefront_with_tracking_and_a_cancelled_one_is_retracted(self):
		payload = utils.order_payload([(self.sku, 3, 20)])
		so = self.assertProcessed(self.checkout(payload))
		utils.run_queued_jobs()
		order_id = payload["order_id"]
		self.assertEqual(self.storefront_order(order_id)["status"], "processing")
		self.assertEqual(self.storefront_order(order_id)["sales_order"], so.name)
		calls = self.storefront.call_count(STATUS_PATH)

		first = self.deliver(so, 1, tracking="TRACK-1")
		told = self.storefront_order(order_id)
		self.assertEqual(told["status"], "partially_shipped")
		self.assertEqual(
			told["shipments"],
			[
				{
					"shipment_id": first.name,
					"carrier": "DHL",
					"tracking_number": "TRACK-1",
					"tracking_url": None,
					"shipped_on": str(first.posting_date),
					"lines": [{"line_id": "1", "sku": self.sku, "qty": 1.0}],
				}
			],
		)
		self.assertEqual(told["lines"][0]["shipped_qty"], 1)
		self.assertEqual(self.storefront.call_count(STATUS_PATH), calls + 1)

		second = self.deliver(so, 2, tracking="TRACK-2", carrier="UPS")
		told = self.storefront_order(order_id)
		self.assertEqual(told["status"], "shipped")
		self.assertEqual([s["tracking_number"] for s in told["shipments"]], ["TRACK-1", "TRACK-2"])
		self.assertEqual(told["shipments"][1]["lines"][0]["qty"], 2)
		self.assertEqual(told["lines"][0]["shipped_qty"], 3)
		self.assertEqual(self.storefront.call_count(STATUS_PATH), calls + 2)

		second.reload()
		second.cancel()
		frappe.db.commit()
		utils.run_queued_jobs()
		told = self.storefront_order(order_id)
		self.assertEqual(told["status"], "partially_shipped")
		self.assertEqual([s["shipment_id"] for s in told["shipments"]], [first.name])
		self.assertEqual(told["lines"][0]["shipped_qty"], 1)

	def test_a_tracking_number_added_after_submitting_reaches_the_storefront(self):
		payload = utils.order_payload([(self.sku, 1, 20)])
		so = self.assertProcessed(self.checkout(payload))
		note = self.deliver(so, 1)
		self.assertIsNone(self.storefront_order(payload["order_id"])["shipments"][0]["tracking_number"])
		note.reload()
		note.ecommerce_tracking_number = "LATE-1"
		note.save()
		frappe.db.commit()
		utils.run_queued_jobs()
		self.assertEqual(
			self.storefront_order(payload["order_id"])["shipments"][0]["tracking_number"], "LATE-1"
		)

	def test_an_erpnext_shipment_gives_its_tracking_to_the_delivery_it_ships(self):
		payload = utils.order_payload([(self.sku, 1, 20)])
		so = self.assertProcessed(self.checkout(payload))
		note = self.deliver(so, 1, carrier=None)
		shipment = frappe.get_doc(
			{
				"doctype": "Shipment",
				"pickup_from_type": "Company",
				"pickup_company": so.company,
				"pickup_address_name": company_address(so.company),
				"pickup_contact_person": "Administrator",
				"delivery_to_type": "Customer",
				"delivery_customer": so.customer,
				"delivery_address_name": so.shipping_address_name,
				"delivery_contact_name": frappe.db.get_value(
					"Customer", so.customer, "customer_primary_contact"
				),
				"shipment_delivery_note": [{"delivery_note": note.name, "grand_total": note.grand_total}],
				"shipment_parcel": [{"length": 20, "width": 20, "height": 10, "weight": 1, "count": 1}],
				"pickup_date": frappe.utils.nowdate(),
				"pickup_from": "09:00",
				"pickup_to": "17:00",
				"description_of_content": "Mugs",
				"carrier": "DHL",
				"awb_number": "AWB-0042",
				"tracking_url": "https://tracking.example/AWB-0042",
			}
		)
		shipment.insert()
		shipment.submit()
		frappe.db.commit()
		utils.run_queued_jobs()
		[told] = self.storefront_order(payload["order_id"])["shipments"]
		self.assertEqual(
			(told["shipment_id"], told["carrier"], told["tracking_number"], told["tracking_url"]),
			(note.name, "DHL", "AWB-0042", "https://tracking.example/AWB-0042"),
		)


def company_address(company: str) -> str:
	name = frappe.db.get_value(
		"Dynamic Link", {"link_doctype": "Company", "link_name": company, "parenttype": "Address"}, "parent"
	)
	if name:
		return name
	return (
		frappe.get_doc(
			{
				"doctype": "Address",
				"address_title": company,
				"address_line1": "1 Warehouse Road",
				"city": "Springfield",
				"country": "United States",
				"is_your_company_address": 1,
				"links": [{"link_doctype": "Company", "link_name": company}],
			}
		)
		.insert(ignore_permissions=True)
		.name
	)


class TestInvoiceWhenPaid(AfterCheckoutCase):
	auto_invoice = "When Paid"

	def test_a_paid_order_is_invoiced_at_once_and_the_invoice_shows_as_paid(self):
		payload, so = self.paid_order()
		[invoice] = self.invoices(so)
		self.assertEqual(invoice.ecommerce_invoice_key, f"order:{payload['order_id']}:invoice")
		self.assertEqual(Decimal(str(invoice.grand_total)), Decimal(payload["total"]))
		self.assertEqual(invoice.outstanding_amount, 0)
		utils.run_queued_jobs()
		told = self.storefront_order(payload["order_id"])
		self.assertEqual((told["billing_status"], told["paid_amount"]), ("invoiced", payload["total"]))

	def test_an_unpaid_order_is_not_invoiced(self):
		payload = utils.order_payload([(self.sku, 1, 20)])
		so = self.assertProcessed(self.checkout(payload))
		self.assertEqual(self.invoices(so), [])


class TestInvoiceWhenDelivered(AfterCheckoutCase):
	auto_invoice = "When Delivered"

	def test_each_delivery_is_invoiced_and_the_invoices_add_up_to_the_order_paid_by_the_advance(self):
		payload, so = self.paid_order(qty=3)
		self.assertEqual(self.invoices(so), [])
		first = self.deliver(so, 1)
		[invoice] = self.invoices(so)
		self.assertEqual(invoice.ecommerce_invoice_key, f"invoice:{first.name}")
		# The first invoice: one unit, all of the shipping, a third of the VAT.
		self.assertEqual(invoice.grand_total, 20 + 5 + 2)
		self.assertEqual(invoice.outstanding_amount, 0)
		self.deliver(so, 2)
		invoices = self.invoices(so)
		self.assertEqual(len(invoices), 2)
		self.assertEqual(sum(Decimal(str(i.grand_total)) for i in invoices), Decimal(str(so.grand_total)))
		self.assertEqual([i.outstanding_amount for i in invoices], [0, 0])
		log = frappe.get_last_doc("Ecommerce Sync Log", filters={"entity": "Invoice"})
		self.assertEqual((log.direction, log.status), ("Internal", "Success"))

	def test_a_retried_invoice_job_makes_no_second_invoice(self):
		from ecommerce_bridge.inbound.invoicing import process_invoice

		_, so = self.paid_order(qty=1)
		note = self.deliver(so, 1)
		log = frappe.get_doc("Ecommerce Sync Log", {"idempotency_key": f"invoice:{note.name}"})
		self.assertEqual(log.status, "Success", log.error)
		frappe.db.set_value("Ecommerce Sync Log", log.name, "status", "Queued")
		frappe.db.commit()
		process_invoice(log.name)
		self.assertEqual(
			frappe.db.get_value("Ecommerce Sync Log", log.name, ["status", "attempts"]), ("Skipped", 2)
		)
		self.assertEqual(len(self.invoices(so)), 1)


class TestReturns(AfterCheckoutCase):
	auto_invoice = "When Paid"

	def test_a_full_return_restocks_credits_the_invoice_and_refunds_the_customer(self):
		payload, so = self.paid_order(qty=2)
		self.deliver(so, 2)
		before = self.shop_qty()
		request = return_request(
			payload,
			reason="wrong size",
			lines=[{"line_id": "1", "sku": self.sku, "qty": 2}],
			refund={"gateway": "stripe", "transaction_id": "re_1", "amount": payload["total"]},
		)
		log = self.send_return(request)
		self.assertEqual(log.status, "Success", f"{log.error}\n{log.traceback}")

		self.assertEqual(self.shop_qty() - before, 2)
		[credit] = self.invoices(so, is_return=1)
		self.assertEqual(Decimal(str(credit.grand_total)), -Decimal(payload["total"]))
		refund = frappe.get_doc(
			"Payment Entry",
			{"ecommerce_payment_key": f"order:{payload['order_id']}:refund:{request['return_id']}"},
		)
		self.assertEqual((refund.payment_type, refund.paid_amount), ("Pay", float(payload["total"])))
		self.assertEqual(refund.reference_no, "re_1")
		# The refund settles the credit note; nothing stays open on either side.
		self.assertEqual(
			[(r.reference_doctype, r.reference_name) for r in refund.references],
			[("Sales Invoice", credit.name)],
		)
		self.assertEqual(frappe.db.get_value("Sales Invoice", credit.name, "outstanding_amount"), 0)
		[invoice] = self.invoices(so)
		self.assertEqual(invoice.outstanding_amount, 0)
		self.assertEqual(frappe.db.get_value("Sales Order", so.name, "status"), "Closed")

		utils.run_queued_jobs()
		told = self.storefront_order(payload["order_id"])
		self.assertEqual(told["status"], "returned")
		self.assertEqual(told["lines"][0]["returned_qty"], 2)
		self.assertEqual(told["refunded_amount"], payload["total"])

		# The same return delivered again books nothing new.
		again = self.web.call(RETURN, request)
		self.assertEqual(again.status_code, 200)
		self.assertTrue(again.json()["message"]["duplicate"])
		utils.run_queued_jobs()
		self.assertEqual(len(self.return_notes(so)), 1)
		self.assertEqual(len(self.invoices(so, is_return=1)), 1)

	def test_partial_returns_add_up_and_one_beyond_what_remains_is_refused_and_logged(self):
		payload, so = self.paid_order(qty=3)
		self.deliver(so, 3)
		for qty in (1, 2):
			refund = {"gateway": "stripe", "transaction_id": f"re_{qty}", "amount": f"{20 * qty}.00"}
			log = self.send_return(
				return_request(payload, lines=[{"sku": self.sku.lower(), "qty": qty}], refund=refund)
			)
			self.assertEqual(log.status, "Success", f"{log.error}\n{log.traceback}")
		credits = self.invoices(so, is_return=1)
		# The first return: one unit and its share of the VAT, no shipping. The second completes the
		# invoice: two units, the rest of the VAT and the shipping. Together they are the invoice.
		self.assertEqual(sorted(c.grand_total for c in credits), [-(40 + 4 + 5), -(20 + 2)])
		self.assertEqual(len(self.return_notes(so)), 2)

		before = self.shop_qty()
		log = self.send_return(return_request(payload, lines=[{"sku": self.sku, "qty": 1}]))
		self.assertEqual(log.status, "Failed")
		self.assertTrue(log.needs_attention)
		self.assertIsNone(log.next_retry_at)
		self.assertIn("only 0 were delivered and not returned", log.error)
		self.assertEqual(len(self.return_notes(so)), 2)
		self.assertEqual(self.shop_qty(), before)

	def test_a_returned_product_bundle_restocks_its_parts(self):
		bundle = utils.make_bundle({self.sku: 2})
		payload = utils.order_payload([(bundle, 2, 35)])
		payload["payment"] = paid(payload["total"])
		so = self.assertProcessed(self.checkout(payload))
		self.deliver(so, 2)
		before = self.shop_qty()
		log = self.send_return(return_request(payload, lines=[{"sku": bundle, "qty": 1}]))
		self.assertEqual(log.status, "Success", f"{log.error}\n{log.traceback}")
		# One bundle of two parts came back.
		self.assertEqual(self.shop_qty() - before, 2)
		[credit] = self.invoices(so, is_return=1)
		self.assertEqual(credit.grand_total, -35)

	def test_a_refund_larger_than_what_was_paid_is_held_for_an_accountant(self):
		payload, so = self.paid_order(qty=1)
		log = self.send_return(
			return_request(
				payload, refund={"gateway": "stripe", "transaction_id": "re_big", "amount": "1000.00"}
			)
		)
		self.assertEqual((log.status, log.needs_attention), ("Failed", 1))
		self.assertIn("refunded 1000.00, but only 31.00 of order", log.error)
		self.assertFalse(frappe.db.exists("Payment Entry", {"reference_no": "re_big"}))

	def test_a_return_of_lines_never_delivered_is_held_for_an_accountant(self):
		payload, so = self.paid_order(qty=1)
		log = self.send_return(return_request(payload, lines=[{"sku": self.sku, "qty": 1}]))
		self.assertEqual((log.status, log.needs_attention), ("Failed", 1))
		self.assertIn("only 0 were delivered", log.error)
		self.assertEqual(self.invoices(so, is_return=1), [])

	def test_a_return_without_lines_or_refund_is_refused_naming_the_field(self):
		response = self.web.call(RETURN, {"return_id": "R-empty", "order_id": "W-x"})
		self.assertEqual(response.status_code, 422)
		self.assertEqual(response.json()["message"]["errors"][0]["field"], "lines")

	def test_restocked_goods_go_to_the_return_warehouse_named_in_settings(self):
		payload, so = self.paid_order(qty=1)
		self.deliver(so, 1)
		frappe.db.set_single_value("Ecommerce Bridge Settings", "return_warehouse", utils.backroom())
		frappe.db.commit()
		log = self.send_return(return_request(payload, lines=[{"sku": self.sku, "qty": 1}]))
		self.assertEqual(log.status, "Success", log.error)
		[note] = self.return_notes(so)
		self.assertEqual(
			frappe.get_all("Delivery Note Item", filters={"parent": note}, pluck="warehouse"),
			[utils.backroom()],
		)

	def test_the_order_reconciliation_shows_returns_and_refunds(self):
		from ecommerce_bridge.ecommerce_bridge.report.order_reconciliation.order_reconciliation import execute

		payload, so = self.paid_order(qty=2)
		self.deliver(so, 2)
		log = self.send_return(
			return_request(
				payload,
				lines=[{"sku": self.sku, "qty": 1}],
				refund={"gateway": "stripe", "transaction_id": "re_rec", "amount": "23.00"},
			)
		)
		self.assertEqual(log.status, "Success", log.error)
		_, rows, *_ = execute({})
		[row] = [row for row in rows if row["order_id"] == payload["order_id"]]
		self.assertEqual(row["payment_recorded"], float(payload["total"]))
		# One of two units: its price and its share of the VAT (20 + 6 / 2), no shipping.
		self.assertEqual((row["credited"], row["refunded"]), (23, 23))
		self.assertEqual((row["result"], row["needs_look"]), ("Returned / refunded", 0))


class TestReturnsWithoutInvoice(AfterCheckoutCase):
	auto_invoice = "Never"

	def test_a_refund_of_an_order_not_invoiced_pays_the_customer_back_against_the_advance(self):
		payload, so = self.paid_order(qty=2)
		self.deliver(so, 2)
		before = self.shop_qty()
		log = self.send_return(
			return_request(
				payload,
				lines=[{"line_id": "1", "sku": self.sku, "qty": 1}],
				refund={"gateway": "stripe", "transaction_id": "re_noinv", "amount": "23.00"},
			)
		)
		self.assertEqual(log.status, "Success", f"{log.error}\n{log.traceback}")
		self.assertEqual(self.shop_qty() - before, 1)
		self.assertEqual(self.invoices(so, is_return=1), [])
		refund = frappe.get_doc("Payment Entry", {"reference_no": "re_noinv"})
		receivable = frappe.get_cached_value("Company", so.company, "default_receivable_account")
		self.assertEqual(
			(refund.docstatus, refund.payment_type, refund.party, refund.paid_to, refund.paid_amount),
			(1, "Pay", so.customer, receivable, 23),
		)
		utils.run_queued_jobs()
		told = self.storefront_order(payload["order_id"])
		self.assertEqual((told["refunded_amount"], told["lines"][0]["returned_qty"]), ("23.00", 1))
		# The kept unit is not invoiced yet: the order stays open for that.
		self.assertEqual(told["status"], "shipped")
		self.assertNotEqual(frappe.db.get_value("Sales Order", so.name, "status"), "Closed")

	def test_a_paid_order_cancelled_before_shipping_is_cancelled_and_refunded(self):
		payload, so = self.paid_order(qty=2, email=f"early-{frappe.generate_hash(length=6)}@example.com")
		response = self.web.call(
			CANCEL,
			{
				"order_id": payload["order_id"],
				"refund": {"gateway": "stripe", "transaction_id": "re_early", "amount": payload["total"]},
			},
		)
		self.assertEqual(response.status_code, 202, response.text[:300])
		utils.run_queued_jobs()
		log = frappe.get_doc("Ecommerce Sync Log", response.json()["message"]["log"])
		self.assertEqual(log.status, "Success", f"{log.error}\n{log.traceback}")
		self.assertEqual(frappe.db.get_value("Sales Order", so.name, "docstatus"), 2)
		refund = frappe.get_doc("Payment Entry", {"reference_no": "re_early"})
		self.assertEqual(
			(refund.docstatus, refund.payment_type, refund.paid_amount), (1, "Pay", float(payload["total"]))
		)
		# The advance still stands, now the customer's, and the refund pays it back: nothing owed.
		from erpnext.accounts.utils import get_balance_on

		self.assertEqual(get_balance_on(party_type="Customer", party=so.customer, company=so.company), 0)


class TestLateCancellation(AfterCheckoutCase):
	auto_invoice = "When Paid"

	def test_a_cancellation_after_a_partial_return_credits_the_rest_of_the_invoice(self):
		payload, so = self.paid_order(qty=3)
		self.deliver(so, 3)
		log = self.send_return(return_request(payload, lines=[{"sku": self.sku, "qty": 1}]))
		self.assertEqual(log.status, "Success", log.error)
		response = self.web.call(CANCEL, {"order_id": payload["order_id"]})
		utils.run_queued_jobs()
		log = frappe.get_doc("Ecommerce Sync Log", response.json()["message"]["log"])
		self.assertEqual(log.status, "Success", f"{log.error}\n{log.traceback}")
		credits = self.invoices(so, is_return=1)
		self.assertEqual(sorted(c.grand_total for c in credits), [-(40 + 4 + 5), -(20 + 2)])
		self.assertEqual(sum(c.grand_total for c in credits), -float(payload["total"]))

	def test_cancelling_a_delivered_and_invoiced_order_returns_credits_refunds_and_closes_it(self):
		payload, so = self.paid_order(qty=3)
		self.deliver(so, 2)
		before = self.shop_qty()
		reserved = flt(
			frappe.db.get_value("Bin", {"item_code": self.sku, "warehouse": utils.shop()}, "reserved_qty")
		)
		response = self.web.call(
			CANCEL,
			{
				"order_id": payload["order_id"],
				"reason": "customer cancelled",
				"refund": {"gateway": "stripe", "transaction_id": "re_c", "amount": payload["total"]},
			},
		)
		self.assertEqual(response.status_code, 202, response.text[:300])
		utils.run_queued_jobs()
		log = frappe.get_doc("Ecommerce Sync Log", response.json()["message"]["log"])
		self.assertEqual(log.status, "Success", f"{log.error}\n{log.traceback}")

		self.assertEqual(self.shop_qty() - before, 2)
		self.assertEqual(len(self.return_notes(so)), 1)
		[credit] = self.invoices(so, is_return=1)
		self.assertEqual(Decimal(str(credit.grand_total)), -Decimal(payload["total"]))
		self.assertEqual(frappe.db.get_value("Sales Order", so.name, "status"), "Closed")
		after = flt(
			frappe.db.get_value("Bin", {"item_code": self.sku, "warehouse": utils.shop()}, "reserved_qty")
		)
		self.assertEqual(reserved - after, 1)
		self.assertTrue(
			frappe.db.exists("Payment Entry", {"reference_no": "re_c", "payment_type": "Pay", "docstatus": 1})
		)
		utils.run_queued_jobs()
		self.assertEqual(self.storefront_order(payload["order_id"])["status"], "closed")
