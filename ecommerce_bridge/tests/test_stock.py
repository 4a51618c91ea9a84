"""Pillar 2: every stock movement reaches the storefront, with the right quantity, and nothing is lost.

Each test moves stock with a real ERPNext voucher, commits like a Desk user would, lets an RQ worker run
the flush job that the commit queued, and reads what the reference storefront now shows.
"""

import frappe
from frappe.tests.utils import FrappeTestCase
from frappe.utils import nowdate

from ecommerce_bridge.outbound.capture import stock_catch_up
from ecommerce_bridge.outbound.push import flush_outbox
from ecommerce_bridge.tests import utils

INVENTORY = "/v1/inventory/batch"


class StockCase(FrappeTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.storefront = utils.start_storefront()
		utils.setup_bridge(cls.storefront.url)
		utils.clear_queues()
		frappe.cache.delete_value("ecommerce_bridge:circuit")

	@classmethod
	def tearDownClass(cls):
		cls.storefront.stop()
		super().tearDownClass()

	def setUp(self):
		self.sku = utils.make_item()
		frappe.db.commit()
		utils.run_queued_jobs()

	def published(self, sku=None):
		"""What the storefront shows after the worker ran the jobs the last commit queued."""
		frappe.db.commit()
		utils.run_queued_jobs()
		return (self.storefront.inventory.get(sku or self.sku) or {}).get("qty")

	def receive(self, qty, warehouse=None):
		return utils.stock_entry("Material Receipt", self.sku, qty, target=warehouse or utils.shop())


class TestVouchers(StockCase):
	def test_stock_entries_receipt_issue_and_transfers(self):
		receipt = self.receive(10)
		self.assertEqual(self.published(), 10)
		utils.stock_entry("Material Issue", self.sku, 3, source=utils.shop())
		self.assertEqual(self.published(), 7)
		utils.stock_entry("Material Transfer", self.sku, 2, source=utils.shop(), target=utils.outside())
		self.assertEqual(self.published(), 5, "stock moved out of the published warehouses")
		utils.stock_entry("Material Receipt", self.sku, 4, target=utils.backroom())
		self.assertEqual(self.published(), 9, "a second warehouse under the published group counts")
		utils.stock_entry("Material Transfer", self.sku, 4, source=utils.backroom(), target=utils.shop())
		self.assertEqual(self.published(), 9)
		second = self.receive(1)
		self.assertEqual(self.published(), 10)
		second.cancel()
		self.assertEqual(self.published(), 9, "a cancelled receipt takes its stock back")
		self.assertEqual(receipt.docstatus, 1)

	def test_stock_reconciliation(self):
		self.receive(5)
		self.assertEqual(self.published(), 5)
		reco = frappe.get_doc(
			{
				"doctype": "Stock Reconciliation",
				"company": utils.company(),
				"purpose": "Stock Reconciliation",
				"expense_account": frappe.get_cached_value(
					"Company", utils.company(), "stock_adjustment_account"
				),
				"items": [{"item_code": self.sku, "warehouse": utils.shop(), "qty": 42, "valuation_rate": 5}],
			}
		)
		reco.insert()
		reco.submit()
		self.assertEqual(self.published(), 42)
		reco.cancel()
		self.assertEqual(self.published(), 5)

	def test_purchase_receipt_and_its_cancellation(self):
		supplier = _supplier()
		receipt = frappe.get_doc(
			{
				"doctype": "Purchase Receipt",
				"company": utils.company(),
				"supplier": supplier,
				"items": [{"item_code": self.sku, "qty": 6, "rate": 5, "warehouse": utils.shop()}],
			}
		)
		receipt.insert()
		receipt.submit()
		self.assertEqual(self.published(), 6)
		receipt.cancel()
		self.assertEqual(self.published(), 0)

	def test_delivery_note_and_sales_invoice_with_stock(self):
		self.receive(10)
		customer = _customer()
		note = frappe.get_doc(
			{
				"doctype": "Delivery Note",
				"company": utils.company(),
				"customer": customer,
				"items": [{"item_code": self.sku, "qty": 2, "rate": 10, "warehouse": utils.shop()}],
			}
		)
		note.insert()
		note.submit()
		self.assertEqual(self.published(), 8)
		invoice = frappe.get_doc(
			{
				"doctype": "Sales Invoice",
				"company": utils.company(),
				"customer": customer,
				"update_stock": 1,
				"items": [{"item_code": self.sku, "qty": 3, "rate": 10, "warehouse": utils.shop()}],
			}
		)
		invoice.insert()
		invoice.submit()
		self.assertEqual(self.published(), 5)
		invoice.cancel()
		self.assertEqual(self.published(), 8)
		note.cancel()
		self.assertEqual(self.published(), 10)

	def test_a_sales_order_reservation_lowers_what_the_storefront_may_sell(self):
		self.receive(10)
		order = frappe.get_doc(
			{
				"doctype": "Sales Order",
				"company": utils.company(),
				"customer": _customer(),
				"delivery_date": nowdate(),
				"items": [{"item_code": self.sku, "qty": 4, "rate": 10, "warehouse": utils.shop()}],
			}
		)
		order.insert()
		order.submit()
		self.assertEqual(self.published(), 6)
		order.cancel()
		self.assertEqual(self.published(), 10)

	def test_a_pos_sale_lowers_the_storefront_at_once_and_not_again_at_the_closing(self):
		from erpnext.accounts.doctype.pos_closing_entry.pos_closing_entry import (
			make_closing_entry_from_opening,
		)

		self.receive(10)
		self.assertEqual(self.published(), 10)
		profile = _pos_profile()
		opening = frappe.get_doc(
			{
				"doctype": "POS Opening Entry",
				"pos_profile": profile,
				"user": frappe.session.user,
				"company": utils.company(),
				"period_start_date": frappe.utils.now_datetime(),
				"balance_details": [{"mode_of_payment": "Cash", "opening_amount": 0}],
			}
		)
		opening.submit()
		sale = frappe.get_doc(
			{
				"doctype": "POS Invoice",
				"company": utils.company(),
				"pos_profile": profile,
				"customer": _customer(),
				"is_pos": 1,
				"update_stock": 1,
				"items": [{"item_code": self.sku, "qty": 3, "rate": 10, "warehouse": utils.shop()}],
				"payments": [{"mode_of_payment": "Cash", "amount": 30}],
			}
		)
		sale.insert()
		sale.submit()
		self.assertEqual(self._actual_qty(), 10, "ERPNext has not moved the stock yet")
		self.assertEqual(self.published(), 7, "the storefront drops at the sale")
		closing = make_closing_entry_from_opening(opening)
		closing.submit()
		self.assertEqual(self._actual_qty(), 7, "the closing moved the stock")
		self.assertEqual(self.published(), 7, "and the storefront does not drop twice")

	def _actual_qty(self):
		return frappe.db.get_value("Bin", {"item_code": self.sku, "warehouse": utils.shop()}, "actual_qty")

	def test_never_below_zero(self):
		self.receive(1)
		order = frappe.get_doc(
			{
				"doctype": "Sales Order",
				"company": utils.company(),
				"customer": _customer(),
				"delivery_date": nowdate(),
				"items": [{"item_code": self.sku, "qty": 5, "rate": 10, "warehouse": utils.shop()}],
			}
		)
		order.insert()
		order.submit()
		self.assertEqual(self.published(), 0)


class TestCapture(StockCase):
	def test_a_rolled_back_transaction_pushes_nothing(self):
		frappe.db.commit()
		row = f"Stock:{self.sku}"
		calls = self.storefront.call_count(INVENTORY)
		before = frappe.db.get_value("Ecommerce Outbox", row, ["version", "pending"])
		self.receive(10)
		self.assertEqual(frappe.db.get_value("Ecommerce Outbox", row, "pending"), 1)
		frappe.db.rollback()
		utils.run_queued_jobs()
		flush_outbox()
		self.assertEqual(frappe.db.get_value("Ecommerce Outbox", row, ["version", "pending"]), before)
		self.assertEqual(self.storefront.call_count(INVENTORY), calls)
		self.assertEqual(self.storefront.inventory[self.sku]["qty"], 0)

	def test_a_hundred_movements_coalesce_into_one_call_with_the_final_quantity(self):
		frappe.db.commit()
		calls = self.storefront.call_count(INVENTORY)
		for _ in range(20):
			self.receive(5)
		for _ in range(10):
			utils.stock_entry("Material Issue", self.sku, 2, source=utils.shop())
		self.assertEqual(self.published(), 80)
		self.assertEqual(self.storefront.call_count(INVENTORY) - calls, 1)
		version = frappe.db.get_value("Ecommerce Outbox", f"Stock:{self.sku}", "version")
		self.assertGreaterEqual(version, 30)
		self.assertEqual(self.storefront.inventory[self.sku]["version"], version)

	def test_a_change_the_hooks_never_saw_is_found_by_the_catch_up(self):
		self.receive(3)
		self.assertEqual(self.published(), 3)
		# ERPNext's own repost path writes Bin with set_value: no document event fires.
		frappe.db.set_value("Bin", {"item_code": self.sku, "warehouse": utils.shop()}, "actual_qty", 11)
		frappe.db.set_value(
			"Ecommerce Outbox", f"Stock:{self.sku}", "changed_at", frappe.utils.add_to_date(None, minutes=-5)
		)
		frappe.db.commit()
		self.assertEqual(self.published(), 3, "no hook saw it")
		stock_catch_up()
		self.assertEqual(self.published(), 11)

	def test_the_storefront_down_for_a_while_then_up_ends_with_every_quantity_right(self):
		others = [utils.make_item() for _ in range(3)]
		frappe.db.commit()
		started = frappe.utils.now_datetime()
		self.storefront.set_down(503)
		try:
			for qty, sku in enumerate([self.sku, *others], start=2):
				utils.stock_entry("Material Receipt", sku, qty, target=utils.shop())
			frappe.db.commit()
			utils.run_queued_jobs()
			pending = frappe.get_all(
				"Ecommerce Outbox", filters={"pending": 1, "entity": "Stock"}, pluck="record_key"
			)
			self.assertTrue(
				{self.sku, *others} <= set(pending), "nothing is lost while the storefront is down"
			)
			failed = frappe.get_all(
				"Ecommerce Sync Log",
				filters={"direction": "Outbound", "status": "Failed", "creation": (">=", started)},
				pluck="error",
			)
			self.assertIn("503", failed[0], "the failed push is in the Sync Log")
		finally:
			self.storefront.set_down(None)
		# Time passes: the backoff and the circuit breaker's pause are over.
		frappe.db.sql("update `tabEcommerce Outbox` set claimed_until = null where pending = 1")
		frappe.cache.delete_value("ecommerce_bridge:circuit")
		frappe.db.commit()
		flush_outbox()
		for qty, sku in enumerate([self.sku, *others], start=2):
			self.assertEqual(self.storefront.inventory[sku]["qty"], qty, sku)


class TestProducts(StockCase):
	def product(self, sku=None):
		frappe.db.commit()
		utils.run_queued_jobs()
		return self.storefront.products.get(sku or self.sku)

	def test_a_new_item_reaches_the_storefront_with_its_price_and_group(self):
		product = self.product()
		self.assertEqual(product["name"], f"Test product {self.sku}")
		self.assertEqual(product["item_group"], "Products")
		self.assertEqual(product["price"], "10.00")
		self.assertEqual(product["uom"], "Nos")
		self.assertFalse(product["disabled"])

	def test_a_price_change_in_the_selling_price_list_reaches_the_storefront(self):
		price = frappe.get_doc("Item Price", {"item_code": self.sku, "price_list": "Standard Selling"})
		price.price_list_rate = 12.5
		price.save()
		self.assertEqual(self.product()["price"], "12.50")

	def test_disable_and_rename_reach_the_storefront_and_storefront_content_is_kept(self):
		self.storefront.set_storefront_fields(self.sku, description="Lovingly written copy")
		item = frappe.get_doc("Item", self.sku)
		item.disabled = 1
		item.save()
		self.assertTrue(self.product()["disabled"])
		new_code = f"{self.sku}-NEW"
		frappe.rename_doc("Item", self.sku, new_code)
		renamed = self.product(new_code)
		self.assertIsNotNone(renamed)
		self.assertNotIn(self.sku, self.storefront.products)
		self.assertEqual(renamed.get("description"), "Lovingly written copy")
		self.assertEqual(frappe.db.get_value("Item", new_code, "ecommerce_sku_key"), new_code.lower())

	def test_a_full_resync_from_the_settings_button_sends_the_catalogue_and_stock(self):
		from ecommerce_bridge.ecommerce_bridge.doctype.ecommerce_bridge_settings.ecommerce_bridge_settings import (
			start_full_resync,
		)

		self.receive(4)
		hidden = utils.make_item(publish=0)
		frappe.db.commit()
		utils.run_queued_jobs()
		self.storefront.reset()
		start_full_resync()
		frappe.db.commit()
		utils.run_queued_jobs()
		self.assertEqual(self.storefront.products[self.sku]["price"], "10.00")
		self.assertEqual(self.storefront.inventory[self.sku]["qty"], 4)
		self.assertNotIn(hidden, self.storefront.products)
		published = frappe.db.count("Item", {"ecommerce_publish": 1})
		self.assertEqual(len(self.storefront.products), published)
		batch = frappe.db.get_single_value("Ecommerce Bridge Settings", "push_batch_size") or 200
		self.assertLessEqual(self.storefront.call_count("/v1/products/batch"), -(-published // batch))

	def test_an_unpublished_item_is_never_sent(self):
		hidden = utils.make_item(publish=0)
		utils.stock_entry("Material Receipt", hidden, 5, target=utils.shop())
		self.assertIsNone(self.product(hidden))
		self.assertNotIn(hidden, self.storefront.inventory)


def _supplier():
	return utils._ensure(
		"Supplier",
		"EB Supplier",
		{"supplier_name": "EB Supplier", "supplier_group": frappe.get_all("Supplier Group", pluck="name")[0]},
	)


def _customer():
	return utils._ensure(
		"Customer",
		"EB Walk-in",
		{
			"customer_name": "EB Walk-in",
			"customer_group": frappe.get_all("Customer Group", filters={"is_group": 0}, pluck="name")[0],
			"territory": frappe.get_all("Territory", filters={"is_group": 0}, pluck="name")[0],
		},
	)


def _pos_profile():
	name = f"EB POS {frappe.generate_hash(length=6)}"
	abbr = utils.abbr()
	cash = frappe.get_doc("Mode of Payment", "Cash")
	if not any(row.company == utils.company() for row in cash.accounts):
		cash.append("accounts", {"company": utils.company(), "default_account": f"Cash - {abbr}"})
		cash.save(ignore_permissions=True)
	frappe.get_doc(
		{
			"doctype": "POS Profile",
			"name": name,
			"__newname": name,
			"company": utils.company(),
			"currency": frappe.get_cached_value("Company", utils.company(), "default_currency"),
			"warehouse": utils.shop(),
			"selling_price_list": "Standard Selling",
			"customer_group": frappe.get_all("Customer Group", filters={"is_group": 0}, pluck="name")[0],
			"territory": frappe.get_all("Territory", filters={"is_group": 0}, pluck="name")[0],
			"cost_center": f"Main - {abbr}",
			"income_account": f"Sales - {abbr}",
			"expense_account": f"Cost of Goods Sold - {abbr}",
			"write_off_account": f"Write Off - {abbr}",
			"write_off_cost_center": f"Main - {abbr}",
			"update_stock": 1,
			"payments": [{"mode_of_payment": "Cash", "default": 1}],
		}
	).insert(ignore_permissions=True)
	return name
