"""SKU Audit: the pre-integration checklist as a report, one row per problem with what to do about it.

Checks: Item codes that collide after SKU normalisation (an order for either would fail), published Items
without a price in the selling price list, SKUs the storefront sells that match no Item, disabled Items
still ticked Publish to Storefront, and published warehouses that belong to another company.
"""

import frappe
from frappe import _

from ecommerce_bridge.settings import get_settings

COLLISION = "SKU collision"
MISSING_PRICE = "Missing price"
UNKNOWN = "Unknown to ERPNext"
DISABLED = "Disabled but published"
OUTSIDE = "Warehouse outside company"


def execute(filters=None):
	filters = frappe._dict(filters or {})
	settings = get_settings()
	rows, notes = [], []
	rows += collisions()
	rows += missing_prices(settings.price_list)
	rows += disabled_but_published()
	rows += warehouses_outside(settings)
	if filters.compare_with_storefront:
		unknown, note = storefront_skus_without_item()
		rows += unknown
		if note:
			notes.append(note)
	if filters.check:
		rows = [row for row in rows if row["check"] == filters.check]
	return columns(), rows, "<br>".join(notes) or None, None, summary(rows)


def columns() -> list[dict]:
	return [
		{"fieldname": "check", "label": _("Check"), "fieldtype": "Data", "width": 180},
		{"fieldname": "item_code", "label": _("Item"), "fieldtype": "Link", "options": "Item", "width": 160},
		{"fieldname": "sku", "label": _("SKU"), "fieldtype": "Data", "width": 140},
		{"fieldname": "warehouse", "label": _("Warehouse"), "fieldtype": "Link", "options": "Warehouse"},
		{"fieldname": "problem", "label": _("Problem and Fix"), "fieldtype": "Data", "width": 480},
	]


def collisions() -> list[dict]:
	groups = frappe.db.sql(
		"""select ecommerce_sku_key as sku_key, group_concat(name order by name separator '\n') as codes
		from `tabItem` where ifnull(ecommerce_sku_key, '') != ''
		group by ecommerce_sku_key having count(*) > 1""",
		as_dict=True,
	)
	rows = []
	for group in groups:
		codes = group.codes.split("\n")
		for code in codes:
			rows.append(
				{
					"check": COLLISION,
					"item_code": code,
					"sku": group.sku_key,
					"problem": _(
						"{0} all read as SKU {1}: an order for it fails. Rename all but one of them."
					).format(", ".join(codes), group.sku_key),
				}
			)
	return rows


def missing_prices(price_list: str | None) -> list[dict]:
	if not price_list:
		return []
	codes = frappe.db.sql(
		"""select item.name from `tabItem` item
		where item.ecommerce_publish = 1 and item.disabled = 0 and not exists (
			select 1 from `tabItem Price` ip where ip.item_code = item.name and ip.price_list = %s)
		order by item.name""",
		price_list,
		pluck=True,
	)
	return [
		{
			"check": MISSING_PRICE,
			"item_code": code,
			"sku": code,
			"problem": _(
				"Published without a price in {0}: add an Item Price so the storefront can sell it."
			).format(price_list),
		}
		for code in codes
	]


def disabled_but_published() -> list[dict]:
	codes = frappe.get_all(
		"Item", filters={"ecommerce_publish": 1, "disabled": 1}, pluck="name", order_by="name"
	)
	return [
		{
			"check": DISABLED,
			"item_code": code,
			"sku": code,
			"problem": _(
				"Disabled, yet Publish to Storefront is ticked: the storefront shows it as unavailable. "
				"Untick Publish to Storefront to take it off the shop."
			),
		}
		for code in codes
	]


def warehouses_outside(settings) -> list[dict]:
	rows = []
	for row in settings.warehouses:
		company = frappe.db.get_value("Warehouse", row.warehouse, "company")
		if company != settings.company:
			rows.append(
				{
					"check": OUTSIDE,
					"warehouse": row.warehouse,
					"problem": _(
						"Belongs to {0}, not to {1}: its stock is not the company's to sell. "
						"Remove it from the Settings' Warehouses."
					).format(company or _("no company"), settings.company),
				}
			)
	return rows


def storefront_skus_without_item() -> tuple[list[dict], str | None]:
	"""SKUs in the storefront's catalogue that resolve to no Item, by the same rule orders use."""
	from ecommerce_bridge.outbound.client import StorefrontError
	from ecommerce_bridge.settings import make_client
	from ecommerce_bridge.skus import normalize_sku

	known = set(
		frappe.get_all("Item", filters={"ecommerce_sku_key": ("is", "set")}, pluck="ecommerce_sku_key")
	)
	rows = []
	try:
		for product in make_client().pages("/v1/products", "products", {"limit": 500}):
			sku = str(product.get("sku") or "")
			if sku and normalize_sku(sku) not in known:
				rows.append(
					{
						"check": UNKNOWN,
						"sku": sku,
						"problem": _(
							"The storefront sells {0}, which matches no Item: an order for it fails. "
							"Create the Item, or take the product off the storefront."
						).format(sku),
					}
				)
	except (StorefrontError, frappe.ValidationError) as exc:
		return rows, _("The storefront's catalogue could not be read: {0}").format(exc)
	return rows, None


def summary(rows: list[dict]) -> list[dict]:
	return [
		{
			"label": _(check),
			"value": sum(1 for row in rows if row["check"] == check),
			"datatype": "Int",
			"indicator": "Red" if any(row["check"] == check for row in rows) else "Green",
		}
		for check in (COLLISION, MISSING_PRICE, UNKNOWN, DISABLED, OUTSIDE)
	]
