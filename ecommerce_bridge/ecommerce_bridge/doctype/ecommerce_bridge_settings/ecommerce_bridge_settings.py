"""Ecommerce Bridge Settings: where the storefront is, how we trust each other, and ERPNext defaults."""

from urllib.parse import urlparse

import frappe
from frappe import _
from frappe.model.document import Document

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


class EcommerceBridgeSettings(Document):
	def validate(self):
		self.validate_storefront_url()
		self.validate_company_records()
		if self.enabled:
			self.validate_complete()

	def on_update(self):
		from ecommerce_bridge.settings import clear_settings_cache

		clear_settings_cache()

	def validate_storefront_url(self):
		if not self.storefront_url:
			return
		self.storefront_url = self.storefront_url.strip().rstrip("/")
		parsed = urlparse(self.storefront_url)
		if parsed.scheme not in ("http", "https") or not parsed.hostname:
			frappe.throw(
				_("Storefront Base URL must look like https://shop.example.com (got {0}).").format(
					frappe.bold(self.storefront_url)
				),
				title=_("Invalid Storefront URL"),
			)
		if parsed.scheme != "https" and parsed.hostname not in LOCAL_HOSTS:
			frappe.throw(
				_("Storefront Base URL must use https:// (plain http is only allowed for localhost)."),
				title=_("Insecure Storefront URL"),
			)

	def validate_company_records(self):
		if not self.company:
			return
		if self.order_warehouse:
			is_group, company = frappe.db.get_value(
				"Warehouse", self.order_warehouse, ["is_group", "company"]
			)
			if is_group:
				frappe.throw(
					_("Order Warehouse {0} is a group warehouse. Pick a warehouse that holds stock.").format(
						frappe.bold(self.order_warehouse)
					)
				)
			if company != self.company:
				frappe.throw(
					_("Order Warehouse {0} belongs to {1}, not to {2}.").format(
						frappe.bold(self.order_warehouse), company, self.company
					)
				)
		for row in self.warehouses:
			company = frappe.db.get_value("Warehouse", row.warehouse, "company")
			if company != self.company:
				frappe.throw(
					_("Warehouse {0} belongs to {1}; only warehouses of {2} can be published.").format(
						frappe.bold(row.warehouse), company, self.company
					)
				)
		for label, account in self._accounts():
			company = frappe.db.get_value("Account", account, "company")
			if company != self.company:
				frappe.throw(
					_("{0} {1} belongs to {2}. Choose an account of {3}.").format(
						label, frappe.bold(account), company, self.company
					)
				)

	def _accounts(self):
		if self.shipping_account:
			yield _("Shipping Charge Account"), self.shipping_account
		for row in self.tax_accounts:
			yield _("Tax account for {0}").format(row.tax_code), row.account
		for row in self.payment_accounts:
			yield _("Account for gateway {0}").format(row.gateway), row.account

	def validate_complete(self):
		required = {
			"storefront_url": _("Storefront Base URL"),
			"company": _("Company"),
			"price_list": _("Selling Price List"),
			"order_warehouse": _("Order Warehouse"),
			"customer_group": _("Customer Group for New Customers"),
			"territory": _("Territory for New Customers"),
		}
		missing = [label for field, label in required.items() if not self.get(field)]
		if not self.get_password("signing_secret", raise_exception=False):
			missing.append(_("Signing Secret"))
		if not self.warehouses:
			missing.append(_("Warehouses"))
		if self.shipping_mode == "Item" and not self.shipping_item:
			missing.append(_("Shipping Item"))
		if self.shipping_mode == "Charge" and not self.shipping_account:
			missing.append(_("Shipping Charge Account"))
		if missing:
			frappe.throw(
				_("Fill in {0} before enabling the bridge, or untick Enabled to save a draft.").format(
					", ".join(missing)
				),
				title=_("Settings Incomplete"),
			)


@frappe.whitelist()
def test_connection() -> dict:
	"""Call the storefront's /health with the saved credentials and say in plain words what happened."""
	frappe.only_for("System Manager")
	from ecommerce_bridge.outbound.client import StorefrontError
	from ecommerce_bridge.settings import make_client

	try:
		answer = make_client(with_breaker=False).get("/health")
	except StorefrontError as exc:
		hint = {
			401: _("The storefront refused our credentials: check the API token and the signing secret."),
			404: _("The storefront has no /health endpoint at that address: check the Storefront Base URL."),
		}.get(exc.status_code, _("Check the Storefront Base URL and that the storefront is running."))
		return {"ok": False, "message": f"{exc} {hint}"}
	except frappe.ValidationError as exc:
		return {"ok": False, "message": str(exc)}
	return {
		"ok": True,
		"message": _("Connected. The storefront answered: {0}").format(frappe.as_json(answer)),
	}


@frappe.whitelist()
def start_full_resync() -> str:
	"""Queue a push of every published Item and its stock; progress shows in the Settings form."""
	frappe.only_for("System Manager")
	frappe.enqueue(
		"ecommerce_bridge.outbound.push.full_resync",
		queue="long",
		job_id="ecommerce_bridge:full_resync",
		deduplicate=True,
		timeout=3600,
		user=frappe.session.user,
	)
	return _("Full resync queued. Progress is shown here; the Sync Log records every batch.")
