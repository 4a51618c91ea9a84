"""One row per thing the storefront must hear about (an Item, a SKU's stock, a Customer).

Rows are written by ``outbound.capture`` with raw upserts in the ERPNext user's own transaction and are
drained by ``outbound.push``. They are never edited by hand.
"""

from frappe.model.document import Document


class EcommerceOutbox(Document):
	pass
