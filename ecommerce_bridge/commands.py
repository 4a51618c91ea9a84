"""Bench commands: ``bench --site SITE ecommerce-bridge-resync`` and ``... ecommerce-bridge-demo``."""

import threading
import time

import click
from frappe.commands import get_site, pass_context

DEMO_PRODUCTS = (
	("DEMO-TSHIRT", "Demo T-Shirt", 19.90, 25),
	("DEMO-MUG", "Demo Mug", 9.50, 40),
	("DEMO-CAP", "Demo Cap", 14.00, 12),
)


def _connect(context):
	import frappe

	site = get_site(context)
	frappe.init(site=site)
	frappe.connect()
	return site


@click.command("ecommerce-bridge-resync")
@pass_context
def resync(context):
	"""Push every published Item, its price and its stock to the storefront now, in batches."""
	import frappe

	from ecommerce_bridge.outbound.push import full_resync

	_connect(context)
	try:
		pushed = full_resync(user="Administrator")
		click.echo(f"Pushed {pushed} changes; each batch is in the Ecommerce Sync Log.")
	finally:
		frappe.destroy()


@click.command("ecommerce-bridge-demo")
@click.option("--port", default=8765, show_default=True, help="Port for the reference storefront (0: any).")
@click.option(
	"--keep-running/--no-keep-running",
	default=True,
	help="Keep the storefront serving (for bench workers to push to) until Ctrl+C.",
)
@pass_context
def demo(context, port, keep_running):
	"""Start the reference storefront, point Settings at it, and run products, stock and one order through.

	Meant for a fresh site: it creates three DEMO- Items with price and stock and a sample customer.
	"""
	import frappe

	from ecommerce_bridge.storefront import ReferenceStorefront

	_connect(context)
	secret = frappe.generate_hash(length=32)
	storefront = ReferenceStorefront(signing_secret=secret, port=port).start()
	web = None
	try:
		_configure_demo(storefront.url, secret)
		from ecommerce_bridge.outbound.push import full_resync

		full_resync(user="Administrator")
		click.echo(f"Reference storefront at {storefront.url}; Settings now point at it.")
		products = storefront.products
		for sku, product in sorted(products.items()):
			if sku.startswith("DEMO-"):
				stock = storefront.inventory.get(sku, {}).get("qty")
				click.echo(
					f"  storefront has {sku}: {product['name']} at {product['price']}, {stock} in stock"
				)
		click.echo(f"  ({len(products)} published Items in all)")

		web = _serve_site()
		sales_order = _sample_order(web, secret)
		click.echo(f"Sample order became Sales Order {sales_order}.")
		click.echo(f"  storefront stock of DEMO-MUG is now {storefront.inventory['DEMO-MUG']['qty']}")
		if keep_running:
			click.echo("Serving the storefront until Ctrl+C; run `bench start` so workers push changes.")
			threading.Event().wait()
	except KeyboardInterrupt:
		pass
	finally:
		if web:
			web.shutdown()
		storefront.stop()
		frappe.destroy()


def _configure_demo(url: str, secret: str) -> None:
	import frappe

	company = frappe.defaults.get_global_default("company") or frappe.get_all("Company", pluck="name")[0]
	abbr, income = frappe.get_cached_value("Company", company, ["abbr", "default_income_account"])
	stores = frappe.db.get_value("Warehouse", {"company": company, "is_group": 0, "warehouse_name": "Stores"})
	stores = (
		stores or frappe.get_all("Warehouse", filters={"company": company, "is_group": 0}, pluck="name")[0]
	)
	settings = frappe.get_single("Ecommerce Bridge Settings")
	settings.update(
		{
			"enabled": 1,
			"storefront_url": url,
			"signing_secret": secret,
			"company": company,
			"price_list": settings.price_list or "Standard Selling",
			"order_warehouse": stores,
			"customer_group": settings.customer_group
			or frappe.get_all("Customer Group", filters={"is_group": 0}, pluck="name")[0],
			"territory": settings.territory
			or frappe.get_all("Territory", filters={"is_group": 0}, pluck="name")[0],
			"shipping_mode": "Charge",
			"shipping_account": settings.shipping_account or income,
			**{f"sync_{pillar}": 1 for pillar in ("products", "stock", "orders", "customers")},
		}
	)
	settings.set("warehouses", [{"warehouse": stores}])
	settings.save(ignore_permissions=True)
	for code, name, price, qty in DEMO_PRODUCTS:
		if not frappe.db.exists("Item", code):
			_make_demo_item(code, name, qty, stores, company)
		frappe.db.set_value("Item", code, "ecommerce_publish", 1)  # a reinstall resets the field
		# Kept apart: ERPNext's test setup deletes every Item Price, so a rerun may need it again.
		if not frappe.db.exists("Item Price", {"item_code": code, "price_list": settings.price_list}):
			frappe.get_doc(
				{
					"doctype": "Item Price",
					"item_code": code,
					"price_list": settings.price_list,
					"price_list_rate": price,
				}
			).insert(ignore_permissions=True)
	frappe.db.commit()
	click.echo(f"Configured {company} ({abbr}): publishing {stores}, price list {settings.price_list}.")


def _make_demo_item(code: str, name: str, qty: float, warehouse: str, company: str) -> None:
	import frappe

	frappe.get_doc(
		{
			"doctype": "Item",
			"item_code": code,
			"item_name": name,
			"item_group": "Products",
			"stock_uom": "Nos",
			"ecommerce_publish": 1,
		}
	).insert(ignore_permissions=True)
	entry = frappe.get_doc(
		{
			"doctype": "Stock Entry",
			"stock_entry_type": "Material Receipt",
			"company": company,
			"items": [{"item_code": code, "qty": qty, "t_warehouse": warehouse, "basic_rate": 5}],
		}
	)
	entry.insert(ignore_permissions=True)
	entry.submit()


def _serve_site():
	"""This site's WSGI app on a local port, in this process (what ``bench serve`` runs)."""
	import frappe
	import frappe.app
	from werkzeug.serving import make_server

	frappe.app._site = frappe.local.site
	server = make_server("127.0.0.1", 0, frappe.app.application, threaded=True)
	threading.Thread(target=server.serve_forever, daemon=True).start()
	return server


def _sample_order(web, secret: str) -> str:
	"""Check out two mugs as the storefront would, then run the job a worker would run."""
	import frappe

	from ecommerce_bridge.inbound.order import process_order
	from ecommerce_bridge.outbound.push import flush_outbox
	from ecommerce_bridge.storefront.shop import send_signed

	order_id = f"DEMO-{frappe.generate_hash(length=8).upper()}"
	address = {
		"line1": "1 Demo Street",
		"city": "Springfield",
		"postcode": "12345",
		"country": "US",
	}
	payload = {
		"order_id": order_id,
		"created_at": frappe.utils.now_datetime().isoformat(),
		"currency": frappe.get_cached_value(
			"Company", frappe.db.get_single_value("Ecommerce Bridge Settings", "company"), "default_currency"
		),
		"customer": {"email": "demo.shopper@example.com", "first_name": "Demo", "last_name": "Shopper"},
		"billing_address": address,
		"shipping_address": address,
		"lines": [{"line_id": "1", "sku": "demo_mug", "qty": 2, "unit_price": "9.50"}],
		"shipping": {"method": "Standard", "amount": "4.50"},
		"total": "23.50",
	}
	host, port = web.server_address[:2]
	status, answer = send_signed(
		f"http://{host}:{port}/api/method/ecommerce_bridge.api.ingest_order", secret, payload, timeout=60
	)
	if status != 202:
		raise click.ClickException(f"the site answered {status}: {answer}")
	log_name = answer["message"]["log"]
	click.echo(f"Storefront order {order_id} acknowledged (202), Sync Log {log_name}.")
	frappe.db.commit()
	process_order(log_name)  # what a worker runs; if `bench start` runs one, whichever claims it first works
	for _ in range(120):
		frappe.db.rollback()
		log = frappe.db.get_value(
			"Ecommerce Sync Log", log_name, ["status", "reference_name", "error"], as_dict=True
		)
		if log.status not in ("Queued", "Processing"):
			break
		time.sleep(0.5)
	flush_outbox()
	if log.status != "Success":
		raise click.ClickException(f"the sample order failed: {log.error}")
	return log.reference_name


commands = [resync, demo]
