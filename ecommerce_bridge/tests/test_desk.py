"""The accountants' Desk: retry rights, idempotent replays, backoff, alerts and digests, the two reports,
the workspace and the health method. Real documents, real HTTP, the reference storefront.
"""

from datetime import timedelta
from decimal import Decimal

import frappe
from frappe.utils import now_datetime, nowdate

from ecommerce_bridge import alerts, desk
from ecommerce_bridge.ecommerce_bridge.report.order_reconciliation import order_reconciliation
from ecommerce_bridge.ecommerce_bridge.report.sku_audit import sku_audit
from ecommerce_bridge.outbound.capture import OUTBOX
from ecommerce_bridge.outbound.push import flush_outbox
from ecommerce_bridge.sync_log import LOG, new_log, next_retry, record_failure
from ecommerce_bridge.tests import utils
from ecommerce_bridge.tests.test_orders import OrderCase

SETTINGS = "Ecommerce Bridge Settings"
ACCOUNTANT = "eb-desk-accountant@example.com"


class DeskCase(OrderCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		utils.user_with_roles(ACCOUNTANT, ["Accounts User"])
		frappe.db.commit()

	@classmethod
	def tearDownClass(cls):
		frappe.set_user("Administrator")
		frappe.db.set_single_value(SETTINGS, {"retry_role": None, "alert_role": "System Manager"})
		frappe.db.commit()
		super().tearDownClass()

	def tearDown(self):
		frappe.set_user("Administrator")

	def set_settings(self, **values):
		frappe.db.set_single_value(SETTINGS, values)
		frappe.clear_document_cache(SETTINGS, SETTINGS)
		frappe.db.commit()


class TestRetry(DeskCase):
	def test_an_accountant_reads_the_log_but_retries_only_when_the_settings_name_their_role(self):
		log = new_log("Inbound", "Order", status="Failed", error="example")
		self.set_settings(retry_role=None)
		frappe.set_user(ACCOUNTANT)
		self.assertTrue(frappe.has_permission(LOG, "read", log))
		self.assertFalse(desk.retry_allowed())
		with self.assertRaises(frappe.PermissionError):
			desk.retry([log.name])
		self.assertEqual(frappe.db.get_value(LOG, log.name, "status"), "Failed")

		frappe.set_user("Administrator")
		self.set_settings(retry_role="Accounts User")
		frappe.set_user(ACCOUNTANT)
		self.assertTrue(desk.retry_allowed())
		self.assertEqual(desk.retry([log.name])["outcomes"], {log.name: "queued"})

	def test_an_unknown_sku_fixed_by_a_person_is_retried_from_the_desk_into_one_sales_order(self):
		code = f"EB-LATE-{frappe.generate_hash(length=5)}"
		payload = utils.order_payload([(code, 1, 20)])
		log = self.checkout(payload)
		self.assertEqual(log.status, "Failed")
		self.assertIn(code, log.error)

		utils.make_item(code=code, price=20)
		utils.stock_entry("Material Receipt", code, 5, target=utils.shop())
		frappe.db.commit()
		self.assertEqual(desk.retry([log.name])["queued"], 1)
		frappe.db.commit()
		utils.run_queued_jobs()
		log.reload()
		self.assertEqual(log.status, "Success", log.error)
		self.assertEqual(len(self.sales_orders(payload["order_id"])), 1)
		self.assertEqual(log.attempts, 2)
		comments = frappe.get_all(
			"Comment", filters={"reference_doctype": LOG, "reference_name": log.name}, pluck="content"
		)
		self.assertTrue(any("Retried by Administrator" in text for text in comments), comments)

	def test_retrying_a_succeeded_order_creates_nothing_new(self):
		payload = utils.order_payload(
			[(self.sku, 1, 20)], payment={"status": "paid", "gateway": "stripe", "transaction_id": "ch_1"}
		)
		log = self.checkout(payload)
		self.assertEqual(log.status, "Success", log.error)
		self.assertEqual(desk.retry([log.name])["outcomes"][log.name], "already done")

		# Even a row that a crash left looking failed replays into the same documents.
		frappe.db.set_value(LOG, log.name, "status", "Failed")
		frappe.db.commit()
		self.assertEqual(desk.retry([log.name])["outcomes"][log.name], "queued")
		frappe.db.commit()
		utils.run_queued_jobs()
		self.assertEqual(frappe.db.get_value(LOG, log.name, "status"), "Success")
		self.assertEqual(len(self.sales_orders(payload["order_id"])), 1)
		payments = frappe.get_all(
			"Payment Entry",
			filters={"ecommerce_payment_key": f"order:{payload['order_id']}:payment", "docstatus": 1},
		)
		self.assertEqual(len(payments), 1)

	def test_bulk_retry_answers_for_every_row(self):
		done = new_log("Inbound", "Order", status="Success")
		failed = new_log("Inbound", "Customer", status="Failed", request_payload={"id": "x"})
		outbound = new_log(
			"Outbound", "Stock", status="Failed", request_payload={"items": [{"sku": self.sku, "qty": 1}]}
		)
		connection = new_log("Outbound", "Connection", status="Failed")
		answer = desk.retry(frappe.as_json([done.name, failed.name, outbound.name, connection.name, "nope"]))
		self.assertEqual(
			answer["outcomes"],
			{
				done.name: "already done",
				failed.name: "queued",
				outbound.name: "queued",
				connection.name: "not retryable",
				"nope": "missing",
			},
		)
		pending = frappe.db.sql(
			f"select pending from `{OUTBOX}` where entity = 'Stock' and record_key = %s", self.sku
		)
		self.assertEqual(pending[0][0], 1)
		utils.clear_queues()


class TestAutomaticRetries(DeskCase):
	def test_the_backoff_doubles_from_a_minute_caps_at_an_hour_and_stops_at_the_limit(self):
		self.set_settings(max_attempts=9)
		now = now_datetime()
		delays = [round((next_retry(n) - now).total_seconds() / 60) for n in range(1, 9)]
		self.assertEqual(delays, [1, 2, 4, 8, 16, 32, 60, 60])
		self.assertIsNone(next_retry(9))
		self.set_settings(max_attempts=5)

	def test_failed_work_is_counted_and_left_for_a_person_after_the_last_attempt(self):
		log = new_log("Inbound", "Order", status="Processing")
		record_failure(log.name, frappe.ValidationError("storefront sent nonsense"), attempts=1)
		first = frappe.get_doc(LOG, log.name)
		self.assertEqual(first.status, "Failed")
		self.assertAlmostEqual((first.next_retry_at - now_datetime()).total_seconds(), 60, delta=5)
		record_failure(log.name, frappe.ValidationError("still nonsense"), attempts=5)
		self.assertIsNone(frappe.db.get_value(LOG, log.name, "next_retry_at"))
		self.assertIn(log.name, {row.name for row in alerts.failed_for_good()})

	def test_a_storefront_outage_is_retried_without_limit_and_its_failures_resolve_when_it_returns(self):
		frappe.db.sql(f"delete from `{OUTBOX}`")
		self.storefront.set_down(503)
		try:
			utils.stock_entry("Material Receipt", self.sku, 1, target=utils.shop())
			frappe.db.commit()
			flush_outbox()
			failed = frappe.get_all(
				LOG,
				filters={"direction": "Outbound", "entity": "Stock", "status": "Failed"},
				fields=["name", "next_retry_at"],
				order_by="creation desc",
				limit=1,
			)[0]
			self.assertIsNotNone(failed.next_retry_at)
			# Many failed rounds later, the change is still queued, never parked.
			frappe.db.sql(f"update `{OUTBOX}` set attempts = 20 where entity = 'Stock'")
			row = frappe.db.sql(
				f"select pending, claimed_until from `{OUTBOX}` where record_key = %s and entity = 'Stock'",
				self.sku,
				as_dict=True,
			)[0]
			self.assertEqual(row.pending, 1)
			self.assertLess(row.claimed_until.year, 9999)
		finally:
			self.storefront.set_down(None)
		frappe.db.sql(f"update `{OUTBOX}` set claimed_until = null where entity = 'Stock'")
		frappe.db.commit()
		flush_outbox()
		self.assertEqual(self.storefront.inventory[self.sku]["qty"], utils.bin_qty(self.sku))
		self.assertEqual(frappe.db.get_value(LOG, failed.name, "status"), "Success")
		self.assertIn("Sent later", frappe.db.get_value(LOG, failed.name, "error"))


class TestAlerts(DeskCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.role = "EB Sync Watcher"
		if not frappe.db.exists("Role", cls.role):
			frappe.get_doc({"doctype": "Role", "role_name": cls.role, "desk_access": 1}).insert()
		cls.watcher = utils.user_with_roles("eb-watcher@example.com", [cls.role])
		frappe.db.commit()

	def setUp(self):
		self.set_settings(alert_role=self.role)
		# Earlier failures count as announced long ago: they neither alert now nor hold a digest back.
		frappe.db.sql(f"update `tab{LOG}` set alerted_at = %s", now_datetime() - timedelta(days=1))
		frappe.db.delete("Notification Log", {"for_user": self.watcher})

	def notifications(self):
		return frappe.get_all(
			"Notification Log",
			filters={"for_user": self.watcher},
			fields=["subject", "document_type", "document_name", "link", "email_content"],
			order_by="creation",
		)

	def fail(self, entity="Order", storefront_id=None, error="SKU X matches no Item"):
		return new_log(
			"Inbound", entity, status="Failed", error=error, storefront_id=storefront_id, attempts=5
		)

	def test_one_failure_for_good_is_one_notification_linking_to_its_row(self):
		log = self.fail(storefront_id="W-ALERT-1")
		retrying = new_log("Inbound", "Order", status="Failed", next_retry_at=now_datetime(), attempts=1)
		self.assertEqual(alerts.send_alerts(), 1)
		(note,) = self.notifications()
		self.assertIn("W-ALERT-1", note.subject)
		self.assertEqual((note.document_type, note.document_name), (LOG, log.name))
		self.assertIn(log.name, note.link)
		self.assertIn("matches no Item", note.email_content)
		self.assertIsNone(frappe.db.get_value(LOG, retrying.name, "alerted_at"))
		self.assertEqual(alerts.send_alerts(), 0)  # told once

	def test_repeated_failures_of_one_kind_become_one_digest(self):
		self.fail(storefront_id="W-FIRST")
		self.assertEqual(alerts.send_alerts(), 1)
		for i in range(4):
			self.fail(storefront_id=f"W-STORM-{i}")
		self.fail(entity="Customer", storefront_id="C-1", error="ambiguous e-mail")
		# Within the window the storm of orders waits; the customer failure is another kind.
		self.assertEqual(alerts.send_alerts(), 1)
		self.assertIn("C-1", self.notifications()[-1].subject)
		frappe.db.sql(
			f"update `tab{LOG}` set alerted_at = %s where alerted_at is not null",
			now_datetime() - alerts.DIGEST_WINDOW - timedelta(minutes=1),
		)
		self.assertEqual(alerts.send_alerts(), 1)
		digest = self.notifications()[-1]
		self.assertIn("4", digest.subject)
		self.assertIn("W-STORM-0", digest.email_content)
		self.assertIn("entity=Order", digest.link)
		self.assertEqual(len(self.notifications()), 3)


class TestReports(DeskCase):
	def test_order_reconciliation_shows_each_order_against_its_sales_order_and_payment(self):
		paid = utils.order_payload(
			[(self.sku, 2, 20)], payment={"status": "paid", "gateway": "stripe", "transaction_id": "ch_ok"}
		)
		unpaid_gateway = utils.order_payload(
			[(self.sku, 1, 20)], payment={"status": "paid", "gateway": "paypal", "transaction_id": "pp_1"}
		)
		unknown = utils.order_payload([("EB-NO-SUCH-SKU", 1, 5)])
		for payload in (paid, unpaid_gateway, unknown):
			self.checkout(payload)
		mismatched = utils.order_payload([(self.sku, 1, 20)])
		mismatch_log = self.checkout(mismatched)
		tampered = frappe.parse_json(mismatch_log.request_payload)
		tampered["total"] = "25.00"
		frappe.db.set_value(LOG, mismatch_log.name, "request_payload", frappe.as_json(tampered))
		never_received = utils.order_payload([(self.sku, 1, 20)])
		self.storefront.add_order(never_received)
		frappe.db.commit()

		columns, rows, message, chart, summary = order_reconciliation.execute(
			{"from_date": nowdate(), "to_date": nowdate(), "compare_with_storefront": 1}
		)
		by_id = {row["order_id"]: row for row in rows}
		self.assertEqual(by_id[paid["order_id"]]["result"], "OK")
		self.assertEqual(Decimal(str(by_id[paid["order_id"]]["payment_recorded"])), Decimal("40"))
		self.assertEqual(by_id[unpaid_gateway["order_id"]]["result"], "Payment not recorded")
		self.assertTrue(by_id[unknown["order_id"]]["result"].startswith("No Sales Order"))
		self.assertEqual(by_id[mismatched["order_id"]]["result"], "Total mismatch")
		self.assertEqual(by_id[mismatched["order_id"]]["difference"], -5.0)
		self.assertEqual(by_id[never_received["order_id"]]["result"], "Missing in ERPNext")
		self.assertIsNone(message)
		self.assertEqual(chart["data"]["datasets"][0]["name"], "Storefront orders")
		self.assertIn("sales_order", [column["fieldname"] for column in columns])

		_, problems, *_ = order_reconciliation.execute(
			{"from_date": nowdate(), "to_date": nowdate(), "only_problems": 1}
		)
		self.assertNotIn(paid["order_id"], {row["order_id"] for row in problems})
		self.assertIn(unknown["order_id"], {row["order_id"] for row in problems})

	def test_sku_audit_lists_each_problem_with_its_fix(self):
		tag = frappe.generate_hash(length=5).upper()
		first = utils.make_item(code=f"EB-AUD-{tag}")
		second = utils.make_item(code=f"eb_aud_{tag.lower()}")
		no_price = utils.make_item(code=f"EB-NOPRICE-{tag}", price=None)
		disabled = utils.make_item(code=f"EB-OFF-{tag}", disabled=1)
		self.storefront.add_storefront_product(f"HAND-{tag}", name="Made in the shop's back office")
		other = _other_company_warehouse()
		settings = frappe.get_single(SETTINGS)
		frappe.get_doc(
			{
				"doctype": "Ecommerce Bridge Warehouse",
				"parent": SETTINGS,
				"parenttype": SETTINGS,
				"parentfield": "warehouses",
				"warehouse": other,
				"idx": len(settings.warehouses) + 1,
			}
		).db_insert()
		frappe.clear_document_cache(SETTINGS, SETTINGS)
		try:
			_, rows, message, _, summary = sku_audit.execute({"compare_with_storefront": 1})
		finally:
			frappe.db.delete("Ecommerce Bridge Warehouse", {"parent": SETTINGS, "warehouse": other})
			frappe.clear_document_cache(SETTINGS, SETTINGS)
		found = {
			(row["check"], row.get("item_code") or row.get("sku") or row.get("warehouse")) for row in rows
		}
		self.assertIn(("SKU collision", first), found)
		self.assertIn(("SKU collision", second), found)
		self.assertIn(("Missing price", no_price), found)
		self.assertIn(("Disabled but published", disabled), found)
		self.assertIn(("Unknown to ERPNext", f"HAND-{tag}"), found)
		self.assertIn(("Warehouse outside company", other), found)
		self.assertNotIn(("Missing price", self.sku), found)
		self.assertNotIn(("Unknown to ERPNext", self.sku), found)
		self.assertIsNone(message)
		collision = next(row for row in rows if row.get("item_code") == first)
		self.assertIn("Rename all but one", collision["problem"])

		_, only, *_ = sku_audit.execute({"check": "Missing price"})
		self.assertEqual({row["check"] for row in only}, {"Missing price"})


class TestWorkspaceAndHealth(DeskCase):
	def test_the_workspace_has_its_cards_chart_and_links(self):
		workspace = frappe.get_doc("Workspace", "E-commerce Bridge")
		self.assertEqual(
			{row.number_card_name for row in workspace.number_cards},
			{"Failed Syncs", "Queued Syncs", "Storefront Orders Today", "Minutes Since Last Stock Push"},
		)
		self.assertEqual([row.chart_name for row in workspace.charts], ["Sync Work by Status"])
		self.assertTrue(
			{"Order Reconciliation", "SKU Audit", SETTINGS, LOG} <= {r.link_to for r in workspace.links}
		)

	def test_the_failed_card_counts_failures_and_the_stock_card_tells_the_age_of_the_last_push(self):
		from frappe.desk.doctype.number_card.number_card import get_result

		card = frappe.get_doc("Number Card", "Failed Syncs")
		new_log("Outbound", "Stock", status="Failed")
		self.assertEqual(
			get_result(card.as_json(), card.filters_json), frappe.db.count(LOG, {"status": "Failed"})
		)
		new_log("Outbound", "Stock", status="Success")
		frappe.set_user(ACCOUNTANT)
		age = desk.last_stock_push_age()
		self.assertEqual(age["value"], 0)
		self.assertEqual(age["route_options"]["entity"], "Stock")

	def test_health_answers_a_signed_monitor_and_refuses_strangers(self):
		frappe.db.sql(f"delete from `{OUTBOX}`")
		utils.stock_entry("Material Receipt", self.sku, 1, target=utils.shop())
		new_log("Inbound", "Order", status="Failed", error="bad")
		frappe.db.commit()
		response = self.web.call("ecommerce_bridge.api.health", http="GET")
		self.assertEqual(response.status_code, 200, response.text[:500])
		report = response.json()["message"]
		self.assertEqual(report["queue_depth"]["outbound_changes"], 1)
		self.assertIsNotNone(report["oldest_pending_change"])
		self.assertGreaterEqual(report["failures_last_hour"], 1)
		self.assertEqual(report["status"], "degraded")
		self.assertEqual(set(report["last_success"]), {"products", "stock", "orders", "customers"})
		self.assertEqual(
			self.web.call("ecommerce_bridge.api.health", http="GET", secret="wrong").status_code, 401
		)
		utils.clear_queues()


def _other_company_warehouse() -> str:
	company = "EB Other Company"
	if not frappe.db.exists("Company", company):
		frappe.get_doc(
			{
				"doctype": "Company",
				"company_name": company,
				"abbr": "EBO",
				"default_currency": frappe.db.get_value("Company", utils.company(), "default_currency"),
				"country": frappe.db.get_value("Company", utils.company(), "country"),
			}
		).insert(ignore_permissions=True)
	name = "EB Elsewhere - EBO"
	if not frappe.db.exists("Warehouse", name):
		frappe.get_doc({"doctype": "Warehouse", "warehouse_name": "EB Elsewhere", "company": company}).insert(
			ignore_permissions=True
		)
	return name
