"""Pillar 3: a storefront checkout becomes exactly one correct Sales Order, and none is ever lost.

Orders arrive over real HTTP at the whitelisted endpoint, signed like the storefront signs them; the
background jobs they queue are run by an RQ worker; the documents are real ERPNext documents.
"""

import time
from datetime import datetime, timezone
from decimal import Decimal

import frappe

from ecommerce_bridge.contract.signing import SIGNATURE_HEADER, sign
from ecommerce_bridge.inbound.order import fetch_missed_orders, retry_due
from ecommerce_bridge.tests import utils

INGEST = "ecommerce_bridge.api.ingest_order"
CANCEL = "ecommerce_bridge.api.cancel_order"


class OrderCase(utils.BridgeCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.sku = utils.make_item(price=20)
		utils.stock_entry("Material Receipt", cls.sku, 100, target=utils.shop())
		frappe.db.commit()

	def assertProcessed(self, log):
		self.assertEqual(log.status, "Success", f"{log.error}\n{log.traceback}")
		self.assertFalse(log.needs_attention, log.error)
		return frappe.get_doc("Sales Order", log.reference_name)


class TestCheckout(OrderCase):
	def test_a_guest_checkout_becomes_a_submitted_sales_order_with_customer_contact_and_address(self):
		email = f"guest-{frappe.generate_hash(length=6)}@example.com"
		payload = utils.order_payload([(self.sku, 2, 20)], email=email)
		so = self.assertProcessed(self.checkout(payload))
		self.assertEqual((so.docstatus, so.status), (1, "To Deliver and Bill"))
		self.assertEqual(so.ecommerce_order_id, payload["order_id"])
		self.assertEqual(Decimal(str(so.grand_total)), Decimal(payload["total"]))
		self.assertEqual([(i.item_code, i.qty, i.rate) for i in so.items], [(self.sku, 2, 20)])
		customer = frappe.get_doc("Customer", so.customer)
		self.assertEqual(customer.ecommerce_email, email)
		self.assertIsNone(customer.ecommerce_customer_id)
		contact = frappe.get_doc("Contact", customer.customer_primary_contact)
		self.assertEqual(contact.email_id, email)
		self.assertIn("+1 555 0100", {row.phone for row in contact.phone_nos})
		address = frappe.get_doc("Address", so.customer_address)
		self.assertEqual(
			(address.address_line1, address.city, address.country),
			("1 Main Street", "Springfield", "United States"),
		)

	def test_a_returning_customer_with_a_differently_typed_email_is_the_same_customer(self):
		email = f"Returning-{frappe.generate_hash(length=6)}@Example.com"
		first = self.assertProcessed(self.checkout(utils.order_payload([(self.sku, 1, 20)], email=email)))
		again = utils.order_payload(
			[(self.sku, 1, 20)],
			email=f"  {email.upper()} ",
			shipping_address=utils.address(line1="99 Other Road", city="Shelbyville"),
		)
		second = self.assertProcessed(self.checkout(again))
		self.assertEqual(first.customer, second.customer)
		self.assertEqual(
			first.customer_address, second.customer_address, "the same billing address is reused"
		)
		self.assertNotEqual(second.shipping_address_name, second.customer_address)
		addresses = frappe.get_all(
			"Dynamic Link",
			filters={"link_doctype": "Customer", "link_name": first.customer, "parenttype": "Address"},
		)
		self.assertEqual(len(addresses), 2, "the new shipping address is added, the old one kept")

	def test_discounts_shipping_and_taxes_make_the_storefront_total_to_the_cent(self):
		other = utils.make_item(price=7)
		payload = utils.order_payload(
			# 3 x 9.99 with 1.00 off (not whole cents per unit) and 2 x 7 with 0.50 off
			[(self.sku, 3, 9.99, 1.00), (other, 2, 7, 0.50)],
			discount_total="2.35",
			shipping={"method": "UPS Ground", "amount": "4.95"},
			taxes=[{"code": "VAT", "description": "Sales tax 8%", "amount": "3.61"}],
		)
		so = self.assertProcessed(self.checkout(payload))
		self.assertEqual(Decimal(str(so.grand_total)).quantize(Decimal("0.01")), Decimal(payload["total"]))
		self.assertEqual(so.ignore_pricing_rule, 1)
		charges = {row.description: row.tax_amount for row in so.taxes}
		self.assertEqual(charges["Shipping: UPS Ground"], 4.95)
		self.assertEqual(charges["Sales tax 8%"], 3.61)
		self.assertEqual(so.taxes[1].account_head, f"{utils.PREFIX} VAT - {utils.abbr()}")
		line = next(row for row in so.items if row.item_code == other)
		self.assertEqual((line.price_list_rate, line.discount_amount, line.rate), (7, 0.25, 6.75))

	def test_a_price_list_price_never_overrides_the_price_the_customer_paid(self):
		payload = utils.order_payload([(self.sku, 1, 12.34)])  # the price list says 20
		so = self.assertProcessed(self.checkout(payload))
		self.assertEqual(so.items[0].rate, 12.34)
		self.assertEqual(so.grand_total, 12.34)

	def test_a_paid_order_records_one_advance_payment_to_the_gateways_account(self):
		payload = utils.order_payload(
			[(self.sku, 1, 20)], payment={"status": "paid", "gateway": "stripe", "transaction_id": "ch_123"}
		)
		log = self.checkout(payload)
		so = self.assertProcessed(log)
		payments = frappe.get_all(
			"Payment Entry Reference",
			filters={"reference_doctype": "Sales Order", "reference_name": so.name, "docstatus": 1},
			fields=["parent", "allocated_amount"],
		)
		self.assertEqual(len(payments), 1)
		pe = frappe.get_doc("Payment Entry", payments[0].parent)
		self.assertEqual(
			(pe.reference_no, pe.paid_amount, pe.paid_to),
			("ch_123", 20, f"{utils.PREFIX} Card Clearing - {utils.abbr()}"),
		)
		self.assertEqual(frappe.db.get_value("Sales Order", so.name, "advance_paid"), 20)
		# Retrying a processed order creates nothing new.
		frappe.db.set_value("Ecommerce Sync Log", log.name, "status", "Queued")
		frappe.db.commit()
		from ecommerce_bridge.inbound.order import process_order

		process_order(log.name)
		self.assertEqual(
			frappe.db.get_value("Ecommerce Sync Log", log.name, ["status", "attempts"]),
			("Success", log.attempts + 1),
		)
		self.assertEqual(len(self.sales_orders(payload["order_id"])), 1)
		self.assertEqual(
			frappe.db.count(
				"Payment Entry", {"ecommerce_payment_key": f"order:{payload['order_id']}:payment"}
			),
			1,
		)

	def test_a_product_bundle_is_sold_as_one_line_and_packs_its_parts(self):
		bundle = utils.make_bundle({self.sku: 2})
		so = self.assertProcessed(self.checkout(utils.order_payload([(bundle, 1, 35)])))
		self.assertEqual([(row.item_code, row.qty) for row in so.packed_items], [(self.sku, 2)])

	def test_lines_shipping_to_several_addresses_stay_on_the_one_order(self):
		payload = utils.order_payload([(self.sku, 1, 20), (self.sku, 1, 20)])
		payload["lines"][1]["shipping_address"] = utils.address(line1="7 Gift Lane", city="Capital City")
		so = self.assertProcessed(self.checkout(payload))
		self.assertEqual(len(self.sales_orders(payload["order_id"])), 1)
		gift = frappe.get_doc("Address", so.items[1].ecommerce_shipping_address)
		self.assertEqual(gift.address_line1, "7 Gift Lane")
		self.assertFalse(so.items[0].ecommerce_shipping_address)


class TestSkus(OrderCase):
	def test_a_sku_resolves_whatever_its_case_and_separators(self):
		code = utils.make_item(f"{utils.PREFIX}-CASE-{frappe.generate_hash(length=4).upper()}")
		storefront_sku = code.lower().replace("-", "_")
		so = self.assertProcessed(self.checkout(utils.order_payload([(storefront_sku, 1, 20)])))
		self.assertEqual(so.items[0].item_code, code)

	def test_an_unknown_sku_fails_naming_it_and_a_retry_after_the_fix_creates_the_order(self):
		missing = f"{utils.PREFIX}-LATE-{frappe.generate_hash(length=4).upper()}"
		payload = utils.order_payload([(missing, 1, 20)])
		log = self.checkout(payload)
		self.assertEqual(log.status, "Failed")
		self.assertIn(missing, log.error)
		self.assertIn("retry", log.error.lower())
		self.assertIsNotNone(log.next_retry_at)
		self.assertEqual(self.sales_orders(payload["order_id"]), [])
		utils.make_item(missing)
		frappe.db.set_value("Ecommerce Sync Log", log.name, "next_retry_at", frappe.utils.add_days(None, -1))
		frappe.db.commit()
		retry_due()
		utils.run_queued_jobs()
		log.reload()
		self.assertProcessed(log)
		self.assertEqual(log.attempts, 2)

	def test_a_disabled_item_fails_the_order(self):
		code = utils.make_item(disabled=1)
		log = self.checkout(utils.order_payload([(code, 1, 20)]))
		self.assertEqual(log.status, "Failed")
		self.assertIn("disabled", log.error)

	def test_two_items_that_normalise_alike_are_a_conflict_not_a_guess(self):
		suffix = frappe.generate_hash(length=4).upper()
		first = utils.make_item(f"{utils.PREFIX}-TWIN-{suffix}")
		second = utils.make_item(f"{utils.PREFIX}_TWIN_{suffix}")
		log = self.checkout(utils.order_payload([(first, 1, 20)]))
		self.assertEqual(log.status, "Failed")
		self.assertIn(first, log.error)
		self.assertIn(second, log.error)

	def test_an_unmapped_tax_code_fails_naming_the_code(self):
		payload = utils.order_payload([(self.sku, 1, 20)], taxes=[{"code": "GST-XX", "amount": "1.00"}])
		log = self.checkout(payload)
		self.assertEqual(log.status, "Failed")
		self.assertIn("GST-XX", log.error)


class TestTheDoor(OrderCase):
	"""Authentication, validation and exactly-once at the endpoint."""

	def test_a_missing_wrong_or_replayed_signature_gets_401_and_creates_nothing(self):
		payload = utils.order_payload([(self.sku, 1, 20)])
		body = frappe.as_json(payload, indent=None).encode()
		cases = {
			"missing": {},
			"wrong secret": {SIGNATURE_HEADER: sign("not-the-secret", body)},
			"replayed": {SIGNATURE_HEADER: sign(utils.SECRET, body, timestamp=int(time.time()) - 3600)},
			"tampered": {SIGNATURE_HEADER: sign(utils.SECRET, body + b" ")},
		}
		for case, headers in cases.items():
			response = utils.requests.post(
				f"{self.web.url}/api/method/{INGEST}",
				data=body,
				headers={"Content-Type": "application/json", **headers},
				timeout=60,
			)
			self.assertEqual(response.status_code, 401, case)
			self.assertNotIn(utils.SECRET, response.text)
		frappe.db.commit()
		self.assertFalse(frappe.db.exists("Ecommerce Sync Log", {"storefront_id": payload["order_id"]}))
		self.assertEqual(self.sales_orders(payload["order_id"]), [])

	def test_get_is_not_allowed(self):
		response = self.web.call(INGEST, None, http="GET")
		self.assertIn(response.status_code, (403, 405))

	def test_a_malformed_order_gets_422_naming_each_field_and_is_logged_with_its_payload(self):
		payload = utils.order_payload([(self.sku, -1, 20)])
		payload["customer"]["email"] = "not-an-email"
		del payload["billing_address"]["city"]
		answer = self.ingest(payload, expect=422)
		fields = {error["field"] for error in answer["errors"]}
		self.assertTrue({"customer.email", "billing_address.city", "lines.0.qty"} <= fields, fields)
		log = frappe.get_doc("Ecommerce Sync Log", answer["log"])
		self.assertEqual(log.status, "Failed")
		self.assertEqual(frappe.parse_json(log.request_payload)["order_id"], payload["order_id"])
		self.assertIn("customer.email", log.error)
		self.assertEqual(self.sales_orders(payload["order_id"]), [])

	def test_a_body_that_is_not_json_gets_400_and_is_kept(self):
		# Sent as text/plain: Frappe itself answers a broken application/json body before any app code.
		body = b"{this is not json"
		before = frappe.db.count("Ecommerce Sync Log")
		response = utils.requests.post(
			f"{self.web.url}/api/method/{INGEST}",
			data=body,
			headers={SIGNATURE_HEADER: sign(utils.SECRET, body), "Content-Type": "text/plain"},
			timeout=60,
		)
		self.assertEqual(response.status_code, 400, response.text[:300])
		self.assertIn("not valid JSON", response.text)
		frappe.db.commit()
		log = frappe.get_doc("Ecommerce Sync Log", response.json()["message"]["log"])
		self.assertEqual((log.status, log.request_payload), ("Failed", body.decode()))
		self.assertEqual(frappe.db.count("Ecommerce Sync Log"), before + 1)

	def test_an_unknown_country_is_refused_naming_the_field(self):
		payload = utils.order_payload([(self.sku, 1, 20)], billing_address=utils.address(country="QQ"))
		answer = self.ingest(payload, expect=422)
		self.assertEqual(answer["errors"][0]["field"], "country")
		self.assertIn("QQ", answer["errors"][0]["message"])

	def test_a_duplicate_delivery_answers_with_the_first_result_and_makes_nothing_new(self):
		payload = utils.order_payload([(self.sku, 1, 20)])
		log = self.checkout(payload)
		again = self.ingest(payload, expect=200)
		self.assertEqual((again["log"], again["status"], again["duplicate"]), (log.name, "Success", True))
		utils.run_queued_jobs()
		self.assertEqual(len(self.sales_orders(payload["order_id"])), 1)

	def test_five_concurrent_deliveries_of_one_order_make_one_sales_order(self):
		payload = utils.order_payload([(self.sku, 1, 20)])
		responses = self.web.call_at_once(INGEST, [payload] * 5)
		self.assertEqual(
			sorted(r.status_code for r in responses),
			[200, 200, 200, 200, 202],
			[r.text[:3000] for r in responses],
		)
		utils.run_queued_jobs()
		frappe.db.rollback()
		self.assertEqual(
			frappe.db.count("Ecommerce Sync Log", {"idempotency_key": f"order:{payload['order_id']}"}), 1
		)
		self.assertEqual(len(self.sales_orders(payload["order_id"])), 1)

	def test_the_storefront_can_ask_what_became_of_an_order(self):
		payload = utils.order_payload([(self.sku, 1, 20)])
		log = self.checkout(payload)
		response = self.web.call(
			"ecommerce_bridge.api.order_status", http="GET", params={"order_id": payload["order_id"]}
		)
		self.assertEqual(response.status_code, 200, response.text[:300])
		status = response.json()["message"]
		self.assertEqual((status["status"], status["sales_order"]), ("Success", log.reference_name))

	def test_an_order_whose_job_was_lost_is_queued_again_by_the_scheduler(self):
		payload = utils.order_payload([(self.sku, 1, 20)])
		answer = self.ingest(payload)
		utils.clear_queues()  # Redis lost the job
		frappe.db.set_value(
			"Ecommerce Sync Log",
			answer["log"],
			"modified",
			frappe.utils.add_to_date(None, hours=-1),
			update_modified=False,
		)
		frappe.db.commit()
		self.assertGreaterEqual(retry_due(), 1)
		frappe.db.commit()
		utils.run_queued_jobs()
		self.assertProcessed(frappe.get_doc("Ecommerce Sync Log", answer["log"]))
		self.assertEqual(len(self.sales_orders(payload["order_id"])), 1)

	def test_an_order_missed_by_the_webhook_is_fetched_by_the_catch_up_once(self):
		payload = utils.order_payload([(self.sku, 1, 20)])
		self.storefront.add_order({**payload, "updated_at": datetime.now(timezone.utc).isoformat()})
		self.assertEqual(fetch_missed_orders(), 1)
		utils.run_queued_jobs()
		self.assertEqual(len(self.sales_orders(payload["order_id"])), 1)
		self.assertEqual(fetch_missed_orders(), 0, "the overlap window does not ingest it twice")
		self.ingest(payload, expect=200)  # the late webhook is a duplicate


class TestCancellation(OrderCase):
	def test_cancelling_an_undelivered_order_cancels_it_and_releases_the_reservation(self):
		payload = utils.order_payload([(self.sku, 3, 20)])
		so = self.assertProcessed(self.checkout(payload))
		reserved = frappe.db.get_value(
			"Bin", {"item_code": self.sku, "warehouse": utils.shop()}, "reserved_qty"
		)
		response = self.web.call(CANCEL, {"order_id": payload["order_id"], "reason": "changed my mind"})
		self.assertEqual(response.status_code, 202, response.text[:300])
		utils.run_queued_jobs()
		so.reload()
		self.assertEqual(so.docstatus, 2)
		after = frappe.db.get_value("Bin", {"item_code": self.sku, "warehouse": utils.shop()}, "reserved_qty")
		self.assertEqual(reserved - after, 3)
		# The storefront is told, like any change of the order's state.
		told = self.storefront.order_status[payload["order_id"]]
		self.assertEqual((told["status"], told["billing_status"]), ("cancelled", "cancelled"))
