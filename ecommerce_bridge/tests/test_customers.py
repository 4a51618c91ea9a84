"""Pillar 4: one Customer per shopper, a true address book, and ERPNext's corrections flowing back."""

import frappe

from ecommerce_bridge.tests import utils

UPSERT = "ecommerce_bridge.api.upsert_customer"
CUSTOMERS = "/v1/customers/batch"


def signup(email, storefront_id=None, **overrides):
	return {
		"id": storefront_id or f"c-{frappe.generate_hash(length=8)}",
		"email": email,
		"first_name": "Grace",
		"last_name": "Hopper",
		"phone": "+1 555 0199",
		"addresses": [
			utils.address(
				id=f"a-{frappe.generate_hash(length=6)}", is_default_billing=True, is_default_shipping=True
			)
		],
		**overrides,
	}


class TestCustomers(utils.BridgeCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.sku = utils.make_item()
		frappe.db.commit()

	def email(self):
		return f"shopper-{frappe.generate_hash(length=8)}@example.com"

	def upsert(self, payload, expect=200):
		response = self.web.call(UPSERT, payload)
		self.assertEqual(response.status_code, expect, response.text[:1000])
		frappe.db.rollback()  # see what the request committed
		return response.json().get("message") or response.json()

	def customers_with(self, email):
		return frappe.get_all("Customer", filters={"ecommerce_email": email.strip().lower()}, pluck="name")

	def test_a_signup_makes_a_customer_with_contact_and_default_address(self):
		email = self.email()
		answer = self.upsert(signup(email))
		customer = frappe.get_doc("Customer", answer["customer"])
		self.assertEqual(customer.customer_name, "Grace Hopper")
		contact = frappe.get_doc("Contact", customer.customer_primary_contact)
		self.assertEqual(contact.email_id, email)
		addresses = frappe.get_all(
			"Address",
			filters=[["Dynamic Link", "link_name", "=", customer.name]],
			fields=["is_primary_address", "is_shipping_address"],
		)
		self.assertEqual(addresses, [{"is_primary_address": 1, "is_shipping_address": 1}])

	def test_a_guest_who_later_registers_stays_one_customer(self):
		email = self.email()
		order = utils.order_payload([(self.sku, 1, 10)], email=email)
		self.assertEqual(self.web.call("ecommerce_bridge.api.ingest_order", order).status_code, 202)
		utils.run_queued_jobs()
		guest = self.customers_with(email)
		self.assertEqual(len(guest), 1)
		answer = self.upsert(
			signup(f"  {email.upper()}  ", storefront_id="c-registered-" + frappe.generate_hash(length=4))
		)
		self.assertEqual(answer["customer"], guest[0])
		self.assertEqual(self.customers_with(email), guest)
		self.assertTrue(frappe.db.get_value("Customer", guest[0], "ecommerce_customer_id"))

	def test_a_new_address_is_added_an_edited_one_updated_and_an_identical_one_not_duplicated(self):
		email = self.email()
		payload = signup(email)
		customer = self.upsert(payload)["customer"]
		payload["addresses"].append(
			utils.address(id="a2-" + frappe.generate_hash(length=4), line1="2 Second St")
		)
		self.upsert(payload)
		self.upsert(payload)  # the same again: nothing new
		links = lambda: frappe.get_all(  # noqa: E731
			"Address",
			filters=[["Dynamic Link", "link_name", "=", customer]],
			fields=["name", "address_line1"],
		)
		self.assertEqual(sorted(a.address_line1 for a in links()), ["1 Main Street", "2 Second St"])
		payload["addresses"][1]["line1"] = "2 Second Street, Apt 4"
		self.upsert(payload)
		self.assertEqual(
			sorted(a.address_line1 for a in links()), ["1 Main Street", "2 Second Street, Apt 4"]
		)

	def test_concurrent_signups_with_one_email_make_one_customer(self):
		email = self.email()
		storefront_id = "c-race-" + frappe.generate_hash(length=6)
		responses = self.web.call_at_once(
			UPSERT, [signup(email, storefront_id=storefront_id) for _ in range(4)]
		)
		frappe.db.rollback()
		self.assertEqual([r.status_code for r in responses], [200] * 4, [r.text[:500] for r in responses])
		self.assertEqual(len(self.customers_with(email)), 1)

	def test_shoppers_of_one_name_signing_up_at_once_become_customers_of_distinct_names(self):
		last_name = "Namesake " + frappe.generate_hash(length=6)
		emails = [self.email() for _ in range(4)]
		responses = self.web.call_at_once(UPSERT, [signup(email, last_name=last_name) for email in emails])
		frappe.db.rollback()
		self.assertEqual([r.status_code for r in responses], [200] * 4, [r.text[:500] for r in responses])
		names = sorted(name for email in emails for name in self.customers_with(email))
		self.assertEqual(names, [f"Grace {last_name}"] + [f"Grace {last_name} - {n}" for n in (1, 2, 3)])

	def test_two_storefront_accounts_with_one_email_are_held_for_a_person(self):
		email = self.email()
		self.upsert(signup(email, storefront_id="c-one-" + frappe.generate_hash(length=4)))
		answer = self.upsert(
			signup(email, storefront_id="c-two-" + frappe.generate_hash(length=4)), expect=409
		)
		log = frappe.get_doc("Ecommerce Sync Log", answer["log"])
		self.assertEqual(log.status, "Failed")
		self.assertTrue(log.needs_attention)
		self.assertIn(email, log.error)
		self.assertEqual(len(self.customers_with(email)), 1)

	def test_bad_input_is_refused_naming_the_field_and_writes_nothing_partial(self):
		email = self.email()
		cases = {
			"email": signup("not-an-email"),
			"first_name": signup(email, first_name=""),
			"last_name": signup(email, last_name="x" * 141),
			"addresses.0.country": signup(email, addresses=[utils.address(country="USA")]),
			"country": signup(email, addresses=[utils.address(country="QQ")]),
		}
		for field, payload in cases.items():
			answer = self.upsert(payload, expect=422)
			self.assertIn(field, {error["field"] for error in answer["errors"]}, field)
		self.assertEqual(self.customers_with(email), [])

	def test_an_address_edited_in_erpnext_reaches_the_storefront_once_and_storefront_changes_are_not_echoed(
		self,
	):
		email = self.email()
		customer = self.upsert(signup(email))["customer"]
		utils.run_queued_jobs()
		self.assertFalse(
			[c for c in self.storefront.customers.values() if c.get("erp_customer") == customer],
			"a change that came from the storefront is not echoed back",
		)
		calls = self.storefront.call_count(CUSTOMERS)
		address = frappe.get_all(
			"Address", filters=[["Dynamic Link", "link_name", "=", customer]], pluck="name"
		)[0]
		doc = frappe.get_doc("Address", address)
		doc.address_line1 = "1 Main Street, Suite 100"
		doc.save()
		frappe.db.commit()
		utils.run_queued_jobs()
		self.assertEqual(self.storefront.call_count(CUSTOMERS) - calls, 1)
		pushed = next(c for c in self.storefront.customers.values() if c.get("erp_customer") == customer)
		self.assertEqual(pushed["addresses"][0]["line1"], "1 Main Street, Suite 100")
		self.assertEqual(pushed["email"], email)
