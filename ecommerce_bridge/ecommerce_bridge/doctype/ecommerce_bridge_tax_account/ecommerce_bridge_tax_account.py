"""A row of Ecommerce Bridge Settings."""

from frappe.model.document import Document


class EcommerceBridgeTaxAccount(Document):
	pass
