"""Screenshots of the accountants' Desk, taken in a real headless Chromium, logged in as an accountant.

Prepares real data in the site (a configured bridge against the reference storefront, orders that
succeed, one shipped and partly returned with a refund, one whose SKU is unknown, one never
received), serves the site with ``bench serve``, and saves PNGs of the Sync Log list, a failed Sync Log
form, the workspace and both reports under docs/screenshots/. Needs Debian's chromium and the playwright package in the bench's Python:

    cd frappe-bench && env/bin/pip install playwright
    env/bin/python apps/ecommerce_bridge/docs/screenshots.py --site bridge.test

Use a site kept for tests: this creates Items, stock, Customers and orders.
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import requests

BENCH = Path(os.environ.get("FRAPPE_BENCH_DIR", "/opt/bench/frappe-bench"))
OUT = Path(__file__).resolve().parent / "screenshots"
ACCOUNTANT, PASSWORD = "accountant@example.com", "Acc0unt!ng-Screens"


def prepare(site: str) -> None:
	import frappe

	os.chdir(BENCH / "sites")
	frappe.init(site=site, sites_path=".")
	frappe.connect()
	frappe.set_user("Administrator")
	from ecommerce_bridge.alerts import send_alerts
	from ecommerce_bridge.tests import utils

	storefront = utils.start_storefront()
	web = utils.WebServer().start()
	try:
		utils.setup_bridge(storefront.url, alert_role="Accounts User")
		utils.user_with_roles(ACCOUNTANT, ["Accounts User"], password=PASSWORD)
		frappe.db.set_value("User", ACCOUNTANT, {"first_name": "Alice", "last_name": "Accountant"})
		known = frappe.db.exists("Item", "MUG-BLUE")
		mug = utils.make_item(code="MUG-BLUE", price=None if known else 12, item_name="Blue mug")
		utils.stock_entry("Material Receipt", mug, 40, target=utils.shop())
		frappe.db.commit()
		paid = {"status": "paid", "gateway": "stripe", "transaction_id": "ch_3PqA9"}
		orders = [
			utils.order_payload([(mug, 2, 12)], payment=paid, email="ada@example.com"),
			utils.order_payload([(mug, 1, 12)], email="grace@example.com"),
			utils.order_payload([("MUG-GREEN", 1, 12)], email="linus@example.com"),
		]
		for payload in orders:
			web.call("ecommerce_bridge.api.ingest_order", payload)
		storefront.add_order(utils.order_payload([(mug, 3, 12)], email="ken@example.com"))
		frappe.db.commit()
		utils.run_queued_jobs()
		# Ada's order ships, and one mug comes back chipped: a return with a refund.
		from erpnext.selling.doctype.sales_order.sales_order import make_delivery_note

		shipped = make_delivery_note(
			frappe.db.get_value("Sales Order", {"ecommerce_order_id": orders[0]["order_id"]})
		)
		shipped.update({"ecommerce_carrier": "DHL", "ecommerce_tracking_number": "00340434161094042557"})
		shipped.insert()
		shipped.submit()
		frappe.db.commit()
		web.call(
			"ecommerce_bridge.api.ingest_return",
			{
				"return_id": f"RET-{orders[0]['order_id']}",
				"order_id": orders[0]["order_id"],
				"reason": "chipped",
				"lines": [{"sku": mug, "qty": 1}],
				"refund": {"gateway": "stripe", "transaction_id": "re_3PqB1", "amount": "12.00"},
			},
		)
		frappe.db.commit()
		utils.run_queued_jobs()
		frappe.db.set_single_value("Ecommerce Bridge Settings", "max_attempts", 1)
		frappe.db.sql(
			"update `tabEcommerce Sync Log` set next_retry_at = null where status = 'Failed' and direction = 'Inbound'"
		)
		frappe.db.commit()
		send_alerts()
		frappe.db.set_single_value("Ecommerce Bridge Settings", "max_attempts", 5)
		frappe.db.commit()
	finally:
		web.stop()
	failed = frappe.db.get_value(
		"Ecommerce Sync Log", {"status": "Failed", "entity": "Order", "direction": "Inbound"}, "name"
	)
	frappe.destroy()
	# The storefront keeps serving: the reports compare with its orders and catalogue.
	return failed, storefront


def shoot(base: str, site: str, failed_log: str) -> None:
	from playwright.sync_api import sync_playwright

	OUT.mkdir(exist_ok=True)
	today = time.strftime("%Y-%m-%d")
	yesterday = time.strftime("%Y-%m-%d", time.localtime(time.time() - 86400))
	pages = {
		"sync-log-list.png": "/app/ecommerce-sync-log",
		"sync-log-failed.png": f"/app/ecommerce-sync-log/{failed_log}",
		"workspace.png": "/app/e-commerce-bridge",
		"order-reconciliation.png": (
			f"/app/query-report/Order Reconciliation?from_date={yesterday}&to_date={today}"
			"&compare_with_storefront=1"
		),
		"sku-audit.png": "/app/query-report/SKU Audit",
	}
	with sync_playwright() as playwright:
		browser = playwright.chromium.launch(
			executable_path="/usr/bin/chromium",
			args=[
				"--no-sandbox",
				"--disable-gpu",
				"--disable-background-networking",
				"--disable-component-update",
			],
		)
		context = browser.new_context(viewport={"width": 1440, "height": 960}, extra_http_headers={})
		page = context.new_page()
		page.goto(f"{base}/login")
		page.fill("#login_email", ACCOUNTANT)
		page.fill("#login_password", PASSWORD)
		page.click(".btn-login")
		page.wait_for_url("**/app**", timeout=60_000)
		for name, path in pages.items():
			page.goto(base + path)
			page.wait_for_load_state("networkidle", timeout=60_000)
			time.sleep(2)  # charts and number cards animate in
			page.screenshot(path=str(OUT / name), full_page=False)
			print(f"saved docs/screenshots/{name}")
		browser.close()


def main() -> int:
	parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
	parser.add_argument("--site", default=os.environ.get("BRIDGE_TEST_SITE", "bridge.test"))
	parser.add_argument("--port", type=int, default=8020)
	args = parser.parse_args()
	failed, storefront = prepare(args.site)
	bench = os.environ.get("BENCH_CLI", "bench")
	server = subprocess.Popen(
		[bench, "--site", args.site, "serve", "--port", str(args.port), "--noreload", "--nothreading"],
		cwd=BENCH,
		stdout=subprocess.DEVNULL,
		stderr=subprocess.DEVNULL,
	)
	base = f"http://127.0.0.1:{args.port}"
	try:
		for _ in range(120):
			try:
				if requests.get(f"{base}/api/method/ping", timeout=2).ok:
					break
			except requests.RequestException:
				time.sleep(0.5)
		shoot(base, args.site, failed)
	finally:
		server.terminate()
		server.wait(timeout=20)
		storefront.stop()
	return 0


if __name__ == "__main__":
	sys.exit(main())
