"""Install and uninstall: the custom fields the bridge adds to ERPNext doctypes, and their removal."""

import frappe
from frappe.custom.doctype.custom_field.custom_field import create_custom_fields

from ecommerce_bridge.skus import normalize_sku

MODULE = "Ecommerce Bridge"


def _ro(**kw):
	return {"read_only": 1, "no_copy": 1, "module": MODULE, **kw}


CUSTOM_FIELDS = {
	"Item": [
		{
			"fieldname": "ecommerce_section",
			"fieldtype": "Section Break",
			"label": "Storefront",
			"insert_after": "description",
			"collapsible": 1,
			"module": MODULE,
		},
		{
			"fieldname": "ecommerce_publish",
			"fieldtype": "Check",
			"label": "Publish to Storefront",
			"insert_after": "ecommerce_section",
			"module": MODULE,
			"description": "Push this Item, its price and its stock to the storefront.",
		},
		_ro(
			fieldname="ecommerce_sku_key",
			fieldtype="Data",
			label="Normalised SKU",
			insert_after="ecommerce_publish",
			search_index=1,
			description="The Item Code as the storefront's SKUs are matched against it.",
		),
	],
	"Customer": [
		_ro(
			fieldname="ecommerce_customer_id",
			fieldtype="Data",
			label="Storefront Customer ID",
			insert_after="customer_group",
			unique=1,
		),
		_ro(
			fieldname="ecommerce_email",
			fieldtype="Data",
			label="Storefront E-mail (normalised)",
			insert_after="ecommerce_customer_id",
			unique=1,
		),
	],
	"Address": [
		_ro(fieldname="ecommerce_address_id", fieldtype="Data", label="Storefront Address ID", unique=1),
	],
	"Sales Order": [
		_ro(
			fieldname="ecommerce_order_id",
			fieldtype="Data",
			label="Storefront Order ID",
			insert_after="po_no",
			unique=1,
			in_standard_filter=1,
		),
		_ro(
			fieldname="ecommerce_sync_log",
			fieldtype="Link",
			options="Ecommerce Sync Log",
			label="Storefront Sync Log",
			insert_after="ecommerce_order_id",
		),
	],
	"Sales Order Item": [
		_ro(
			fieldname="ecommerce_line_id",
			fieldtype="Data",
			label="Storefront Line ID",
			insert_after="item_name",
		),
		_ro(
			fieldname="ecommerce_shipping_address",
			fieldtype="Link",
			options="Address",
			label="Ship This Line To",
			insert_after="ecommerce_line_id",
			description="Set when the storefront order ships to several addresses.",
		),
	],
	"Delivery Note": [
		{
			"fieldname": "ecommerce_carrier",
			"fieldtype": "Data",
			"label": "Carrier",
			"insert_after": "lr_date",
			"allow_on_submit": 1,
			"no_copy": 1,
			"module": MODULE,
			"description": "Told to the storefront with the tracking number; may be added after submitting.",
		},
		{
			"fieldname": "ecommerce_tracking_number",
			"fieldtype": "Data",
			"label": "Tracking Number",
			"insert_after": "ecommerce_carrier",
			"allow_on_submit": 1,
			"no_copy": 1,
			"in_standard_filter": 1,
			"module": MODULE,
		},
		_ro(
			fieldname="ecommerce_return_id",
			fieldtype="Data",
			label="Storefront Return ID",
			insert_after="return_against",
		),
	],
	"Sales Invoice": [
		_ro(
			fieldname="ecommerce_invoice_key",
			fieldtype="Data",
			label="Storefront Invoice Key",
			insert_after="po_no",
			unique=1,
			description="Set on invoices the bridge made, so that each is made once.",
		),
		_ro(
			fieldname="ecommerce_return_id",
			fieldtype="Data",
			label="Storefront Return ID",
			insert_after="return_against",
		),
	],
	"Payment Entry": [
		_ro(
			fieldname="ecommerce_payment_key",
			fieldtype="Data",
			label="Storefront Payment Key",
			insert_after="reference_no",
			unique=1,
		),
	],
}


def after_install():
	after_migrate()
	backfill_sku_keys()


def after_migrate():
	create_custom_fields(CUSTOM_FIELDS, ignore_validate=True, update=True)
	# The workers take the oldest Queued row: an index that finds it without sorting every Queued row.
	frappe.db.add_index("Ecommerce Sync Log", ["status", "creation"])


def backfill_sku_keys():
	for item_code in frappe.get_all("Item", pluck="name"):
		frappe.db.set_value(
			"Item", item_code, "ecommerce_sku_key", normalize_sku(item_code), update_modified=False
		)


def before_uninstall():
	"""Remove what we added to ERPNext's own doctypes; Frappe removes our doctypes and workspace itself."""
	for doctype, fields in CUSTOM_FIELDS.items():
		for field in fields:
			name = frappe.db.get_value("Custom Field", {"dt": doctype, "fieldname": field["fieldname"]})
			if name:
				frappe.delete_doc("Custom Field", name, ignore_permissions=True, force=True)
			if frappe.db.has_column(doctype, field["fieldname"]):
				frappe.db.sql_ddl(f"alter table `tab{doctype}` drop column `{field['fieldname']}`")
		frappe.clear_cache(doctype=doctype)


def after_uninstall():
	frappe.db.delete("Scheduled Job Type", {"method": ("like", "ecommerce_bridge.%")})
	frappe.db.commit()
