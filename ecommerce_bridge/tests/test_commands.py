"""The bench commands a new user meets first: the demo, and the full resync."""

import subprocess
import sys

import frappe
from frappe.tests.utils import FrappeTestCase

from ecommerce_bridge.tests import utils


def bench(*argv: str) -> subprocess.CompletedProcess:
	"""Run ``bench --site SITE ...`` exactly as bench runs it."""
	return subprocess.run(
		[sys.executable, "-m", "frappe.utils.bench_helper", "frappe", "--site", frappe.local.site, *argv],
		cwd=frappe.utils.get_bench_path() + "/sites",
		capture_output=True,
		text=True,
		timeout=600,
	)


class TestCommands(FrappeTestCase):
	def tearDown(self):
		frappe.db.rollback()
		frappe.clear_cache(doctype="Ecommerce Bridge Settings")

	def test_the_demo_shows_products_stock_and_a_sample_order_flowing(self):
		done = bench("ecommerce-bridge-demo", "--port", "0", "--no-keep-running")
		self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
		self.assertRegex(done.stdout, r"storefront has DEMO-MUG: Demo Mug at 9.50, \d+(\.0)? in stock")
		sales_order = done.stdout.split("became Sales Order ")[1].split(".")[0]
		frappe.db.rollback()
		so = frappe.get_doc("Sales Order", sales_order)
		self.assertEqual((so.docstatus, so.grand_total), (1, 23.5))
		self.assertEqual([(row.item_code, row.qty) for row in so.items], [("DEMO-MUG", 2)])
		before = float(done.stdout.split("storefront has DEMO-MUG: Demo Mug at 9.50, ")[1].split(" ")[0])
		after = float(done.stdout.split("storefront stock of DEMO-MUG is now ")[1].split()[0])
		self.assertEqual(after, before - 2, "the order's reservation reached the storefront")

	def test_the_resync_command_pushes_to_the_configured_storefront(self):
		storefront = utils.start_storefront()
		try:
			utils.setup_bridge(storefront.url)
			sku = utils.make_item(price=3)
			frappe.db.commit()
			done = bench("ecommerce-bridge-resync")
			self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
			self.assertIn("Pushed", done.stdout)
			self.assertEqual(storefront.products[sku]["price"], "3.00")
		finally:
			storefront.stop()
