"""Alerts: nothing fails silently. Work that failed for good reaches the people who must act.

A scheduled job finds Sync Log rows that failed for good (no retry left, or waiting for a person) and
were not announced yet, and tells everyone with the Settings' Alert Role through a Desk notification
(and an e-mail when outgoing mail is set up). One failure is one message linking to its row; several of
one kind (direction and entity) become one digest linking to the filtered list, and a kind announced
less than ``DIGEST_WINDOW`` ago waits for the window to pass, so a storm is a handful of messages.
"""

from datetime import timedelta

import frappe
from frappe import _
from frappe.desk.doctype.notification_log.notification_log import make_notification_logs
from frappe.utils import get_url, now_datetime

from ecommerce_bridge.settings import get_settings
from ecommerce_bridge.sync_log import LOG

DIGEST_WINDOW = timedelta(minutes=30)
LIST_ROUTE = "ecommerce-sync-log"


def failed_for_good(limit: int = 2000) -> list[dict]:
	"""Rows a person must hear about: failed with no retry left, or flagged for an accountant."""
	max_attempts = get_settings().max_attempts or 5
	return frappe.db.sql(
		f"""select name, direction, entity, storefront_id, error, creation from `tab{LOG}`
		where alerted_at is null and status not in ('Queued', 'Processing') and (
			needs_attention = 1
			or (status in ('Failed', 'Partial') and (next_retry_at is null or attempts >= %(max)s)))
		order by creation limit %(limit)s""",
		{"max": max_attempts, "limit": limit},
		as_dict=True,
	)


def send_alerts() -> int:
	"""Announce what failed for good, grouped by kind. Returns the number of messages sent."""
	role = get_settings().alert_role
	recipients = _recipients(role) if role else []
	if not recipients:
		return 0
	now = now_datetime()
	kinds: dict[tuple[str, str], list[dict]] = {}
	for row in failed_for_good():
		kinds.setdefault((row.direction, row.entity), []).append(row)
	sent = 0
	for (direction, entity), rows in kinds.items():
		if _announced_since(direction, entity, now - DIGEST_WINDOW):
			continue  # the next digest of this kind collects these
		_announce(recipients, direction, entity, rows)
		frappe.db.sql(
			f"update `tab{LOG}` set alerted_at = %(now)s where name in %(names)s",
			{"now": now, "names": tuple(row.name for row in rows)},
		)
		sent += 1
	frappe.db.commit()
	return sent


def _announced_since(direction: str, entity: str, since) -> bool:
	return bool(
		frappe.db.sql(
			f"""select 1 from `tab{LOG}` where direction = %s and entity = %s and alerted_at >= %s limit 1""",
			(direction, entity, since),
		)
	)


def _recipients(role: str) -> list[str]:
	"""E-mail addresses of the enabled desk users holding ``role``."""
	users = frappe.get_all("Has Role", filters={"role": role, "parenttype": "User"}, pluck="parent")
	if not users:
		return []
	return frappe.get_all(
		"User",
		filters={"name": ("in", users), "enabled": 1, "user_type": "System User", "email": ("is", "set")},
		pluck="email",
	)


def _announce(recipients: list[str], direction: str, entity: str, rows: list[dict]) -> None:
	kind = _("{0} {1}").format(_(direction), _(entity))
	if len(rows) == 1:
		row = rows[0]
		subject = _("E-commerce sync failed: {0} {1}").format(kind, row.storefront_id or row.name)
		content = _("{0}<br><br>Open the Sync Log row to read the details and retry it when fixed.").format(
			frappe.utils.escape_html(row.error or _("No reason was recorded."))
		)
		link = f"/app/{LIST_ROUTE}/{row.name}"
		document = {"document_type": LOG, "document_name": row.name}
	else:
		subject = _("E-commerce sync: {0} {1} failures need a person").format(len(rows), kind)
		examples = "".join(
			f"<li>{frappe.utils.escape_html(row.storefront_id or row.name)}: "
			f"{frappe.utils.escape_html((row.error or '').splitlines()[0] if row.error else '')}</li>"
			for row in rows[:10]
		)
		more = _("and {0} more").format(len(rows) - 10) if len(rows) > 10 else ""
		content = _(
			"The first of them:<ul>{0}</ul>{1}<br>Filter the Sync Log on Failed to see them all."
		).format(examples, more)
		link = f"/app/{LIST_ROUTE}?direction={direction}&entity={entity}"
		document = {"document_type": LOG}
	make_notification_logs(
		frappe._dict(
			{
				"type": "Alert",
				"subject": subject,
				"email_content": content,
				"from_user": "Administrator",
				"link": link,
				**document,
			}
		),
		recipients,
	)
	if _outgoing_mail_configured():
		frappe.sendmail(
			recipients=recipients,
			subject=subject,
			message=f"{content}<br><br><a href='{get_url(link)}'>{get_url(link)}</a>",
			reference_doctype=LOG,
			reference_name=document.get("document_name"),
		)


def _outgoing_mail_configured() -> bool:
	return bool(frappe.db.exists("Email Account", {"enable_outgoing": 1}))
