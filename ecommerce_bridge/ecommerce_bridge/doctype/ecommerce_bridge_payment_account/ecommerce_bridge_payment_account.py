"""A row of Ecommerce Bridge Settings."""

from frappe.model.document import Document


class EcommerceBridgePaymentAccount(Document):
	pass
