"""The app's table of contents: what ERPNext events we listen to, what runs on a schedule."""

app_name = "ecommerce_bridge"
app_title = "Ecommerce Bridge"
app_publisher = "ecommerce_bridge developers"
app_description = "Connects ERPNext to a custom e-commerce storefront: products, stock, orders and customers"
app_email = "dev@example.com"
app_license = "MIT"

# The "owner/repo" form: the bare "erpnext" makes frappe 15 look the app up online at install time.
required_apps = ["frappe/erpnext"]

after_install = "ecommerce_bridge.install.after_install"
after_migrate = "ecommerce_bridge.install.after_migrate"
before_uninstall = "ecommerce_bridge.install.before_uninstall"
after_uninstall = "ecommerce_bridge.install.after_uninstall"
before_tests = "ecommerce_bridge.tests.utils.before_tests"

# Hooks only record what changed (outbox rows in the same transaction); workers push after commit.
_capture = "ecommerce_bridge.outbound.capture"
_orders = "ecommerce_bridge.outbound.order_status"
doc_events = {
	"Item": {
		"validate": f"{_capture}.set_sku_key",
		"on_update": f"{_capture}.item_changed",
		"after_rename": f"{_capture}.item_renamed",
		"on_trash": f"{_capture}.item_changed",
	},
	"Item Price": {
		"on_update": f"{_capture}.item_price_changed",
		"on_trash": f"{_capture}.item_price_changed",
	},
	# Every movement of actual stock, of every voucher type and its cancellation, inserts a ledger entry.
	"Stock Ledger Entry": {"after_insert": f"{_capture}.ledger_entry_posted"},
	# Reservations reach Bin through db_set (fires on_change) or db_update (fires nothing): catch the causes.
	"Bin": {"on_change": f"{_capture}.bin_changed"},
	"Sales Order": {"on_change": [f"{_capture}.voucher_lines_changed", f"{_orders}.sales_order_changed"]},
	"POS Invoice": {"on_change": f"{_capture}.voucher_lines_changed"},
	"Stock Reservation Entry": {"on_change": f"{_capture}.stock_reservation_changed"},
	# The order's life after checkout: shipments, invoices, payments and refunds are told to the storefront.
	"Delivery Note": {
		"on_submit": [f"{_orders}.delivery_changed", "ecommerce_bridge.inbound.invoicing.delivery_submitted"],
		"on_cancel": f"{_orders}.delivery_changed",
		"on_update_after_submit": f"{_orders}.delivery_changed",
	},
	"Shipment": {"on_change": f"{_orders}.shipment_changed"},
	"Sales Invoice": {"on_submit": f"{_orders}.invoice_changed", "on_cancel": f"{_orders}.invoice_changed"},
	"Payment Entry": {"on_submit": f"{_orders}.payment_changed", "on_cancel": f"{_orders}.payment_changed"},
	# ERPNext edits of a storefront Customer flow back (changes that came from the storefront are not echoed).
	"Customer": {"on_update": "ecommerce_bridge.inbound.customer.customer_edited"},
	"Contact": {"on_update": "ecommerce_bridge.inbound.customer.customer_edited"},
	"Address": {"on_update": "ecommerce_bridge.inbound.customer.customer_edited"},
	"Warehouse": {
		"on_update": "ecommerce_bridge.settings.clear_settings_cache",
		"on_trash": "ecommerce_bridge.settings.clear_settings_cache",
	},
}

scheduler_events = {
	"cron": {
		# The safety net: whatever the hooks missed is found by Bin.modified and re-pushed.
		"* * * * *": [
			"ecommerce_bridge.outbound.push.flush_outbox",
			"ecommerce_bridge.outbound.capture.stock_catch_up",
			"ecommerce_bridge.inbound.order.retry_due",
		],
		"*/5 * * * *": [
			"ecommerce_bridge.inbound.order.fetch_missed_orders",
			"ecommerce_bridge.alerts.send_alerts",
		],
	},
}

default_log_clearing_doctypes = {"Ecommerce Sync Log": 30}
