"""Ecommerce Sync Log: one row per unit of sync work, the accountants' window on the integration."""

import frappe
from frappe.model.document import Document
from frappe.query_builder import Interval
from frappe.query_builder.functions import Now


class EcommerceSyncLog(Document):
	def onload(self):
		from ecommerce_bridge.desk import can_retry

		self.set_onload("can_retry", can_retry())

	@staticmethod
	def clear_old_logs(days: int = 30) -> None:
		"""Called by Log Settings. Only finished, successful work is cleared; failures stay until a person acts."""
		table = frappe.qb.DocType("Ecommerce Sync Log")
		frappe.db.delete(
			table,
			filters=(table.modified < (Now() - Interval(days=days)))
			& (table.status.isin(["Success", "Skipped"]))
			& (table.needs_attention == 0),
		)
