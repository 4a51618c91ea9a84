"""The ground every pillar stands on: Settings that refuse bad input, a Sync Log the database keeps
honest, the right people seeing it, and Frappe's log clearing leaving failures alone."""

import threading

import frappe
import pymysql
import requests
from frappe.tests.utils import FrappeTestCase
from frappe.utils import add_days, now_datetime

from ecommerce_bridge.ecommerce_bridge.doctype.ecommerce_bridge_settings.ecommerce_bridge_settings import (
	test_connection,
)
from ecommerce_bridge.ecommerce_bridge.doctype.ecommerce_sync_log.ecommerce_sync_log import EcommerceSyncLog
from ecommerce_bridge.sync_log import new_log
from ecommerce_bridge.tests import utils


def _raw_connection():
	conf = frappe.conf
	return pymysql.connect(
		host=conf.db_host or "127.0.0.1",
		port=int(conf.db_port or 3306),
		user=conf.get("db_user") or conf.db_name,
		password=conf.db_password,
		database=conf.db_name,
		autocommit=False,
	)


def _insert_log(connection, name, key):
	with connection.cursor() as cursor:
		cursor.execute(
			"""insert into `tabEcommerce Sync Log` (name, creation, modified, owner, modified_by, docstatus,
				idx, status, direction, entity, idempotency_key, attempts)
			values (%s, now(), now(), 'Administrator', 'Administrator', 0, 0, 'Queued', 'Inbound', 'Order', %s, 0)""",
			(name, key),
		)


class TestSettings(FrappeTestCase):
	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.storefront = utils.start_storefront()
		utils.setup_bridge(cls.storefront.url)

	@classmethod
	def tearDownClass(cls):
		cls.storefront.stop()
		super().tearDownClass()

	def tearDown(self):
		frappe.db.rollback()

	def settings(self):
		return frappe.get_doc("Ecommerce Bridge Settings")

	def test_plain_http_is_refused_unless_the_storefront_is_local(self):
		settings = self.settings()
		settings.storefront_url = "http://shop.example.com"
		with self.assertRaisesRegex(frappe.ValidationError, "https://"):
			settings.save()
		for url, saved in (
			("https://shop.example.com/", "https://shop.example.com"),
			("http://localhost:8765",) * 2,
		):
			settings = self.settings()
			settings.storefront_url = url
			settings.save()
			self.assertEqual(settings.storefront_url, saved)

	def test_a_malformed_url_says_what_it_should_look_like(self):
		settings = self.settings()
		settings.storefront_url = "shop.example.com"
		with self.assertRaisesRegex(frappe.ValidationError, "must look like https://"):
			settings.save()

	def test_enabling_incomplete_settings_names_what_is_missing(self):
		settings = self.settings()
		settings.price_list = None
		settings.set("warehouses", [])
		with self.assertRaisesRegex(frappe.ValidationError, "Selling Price List.*Warehouses"):
			settings.save()
		settings = self.settings()
		settings.update({"enabled": 0, "price_list": None})
		settings.set("warehouses", [])
		settings.save()  # a draft may be incomplete

	def test_a_group_warehouse_cannot_take_orders(self):
		settings = self.settings()
		settings.order_warehouse = f"{utils.PREFIX} Stores - {utils.abbr()}"
		with self.assertRaisesRegex(frappe.ValidationError, "group warehouse"):
			settings.save()

	def test_secrets_are_stored_as_passwords_and_never_shown_back(self):
		settings = self.settings()
		self.assertNotEqual(settings.signing_secret, utils.SECRET)
		self.assertEqual(settings.get_password("signing_secret"), utils.SECRET)
		self.assertNotIn(utils.SECRET, frappe.as_json(settings.as_dict()))

	def test_test_connection_reports_success_and_bad_credentials_in_plain_words(self):
		answer = test_connection()
		self.assertTrue(answer["ok"], answer)
		self.assertIn("Connected", answer["message"])
		settings = self.settings()
		settings.api_token = "wrong-token"
		settings.save()
		answer = test_connection()
		self.assertFalse(answer["ok"])
		self.assertIn("credentials", answer["message"])
		self.assertNotIn("wrong-token", answer["message"])


class TestSyncLog(FrappeTestCase):
	def tearDown(self):
		frappe.db.rollback()

	def test_the_database_refuses_a_second_row_with_the_same_idempotency_key(self):
		key = f"test:{frappe.generate_hash(length=10)}"
		new_log("Inbound", "Order", idempotency_key=key)
		with self.assertRaises(frappe.UniqueValidationError):
			new_log("Inbound", "Order", idempotency_key=key)

	def test_two_concurrent_connections_cannot_both_record_one_key(self):
		key = f"test:{frappe.generate_hash(length=10)}"
		first, second = _raw_connection(), _raw_connection()
		outcome = {}
		try:
			_insert_log(first, frappe.generate_hash(length=10), key)

			def race():
				try:
					_insert_log(second, frappe.generate_hash(length=10), key)
					second.commit()
					outcome["second"] = "inserted"
				except pymysql.err.IntegrityError as exc:
					outcome["second"] = exc.args[0]
					second.rollback()

			thread = threading.Thread(target=race)
			thread.start()
			thread.join(timeout=1)
			self.assertTrue(thread.is_alive(), "the second insert must wait for the first transaction")
			first.commit()
			thread.join(timeout=30)
			self.assertEqual(outcome["second"], 1062)  # ER_DUP_ENTRY
		finally:
			with first.cursor() as cursor:
				cursor.execute("delete from `tabEcommerce Sync Log` where idempotency_key = %s", key)
			first.commit()
			first.close()
			second.close()

	def test_accountants_read_the_log_but_only_system_managers_change_it(self):
		log = new_log("Inbound", "Order", status="Failed", error="example")
		user = utils.user_with_roles("eb-accountant@example.com", ["Accounts User"])
		self.assertTrue(frappe.has_permission("Ecommerce Sync Log", "read", log, user=user))
		self.assertFalse(frappe.has_permission("Ecommerce Sync Log", "write", log, user=user))
		self.assertFalse(frappe.has_permission("Ecommerce Sync Log", "delete", log, user=user))
		self.assertFalse(frappe.has_permission("Ecommerce Sync Log", "read", log, user="Guest"))
		self.assertTrue(frappe.has_permission("Ecommerce Sync Log", "write", log, user="Administrator"))
		self.assertFalse(frappe.has_permission("Ecommerce Bridge Settings", "read", user=user))

	def test_log_clearing_removes_old_successes_and_keeps_every_failure(self):
		old = add_days(now_datetime(), -40)
		success = new_log("Outbound", "Stock", status="Success")
		failure = new_log("Outbound", "Stock", status="Failed", error="storefront down")
		flagged = new_log("Inbound", "Order", status="Success", needs_attention=1)
		recent = new_log("Outbound", "Stock", status="Success")
		for log in (success, failure, flagged):
			frappe.db.set_value("Ecommerce Sync Log", log.name, "modified", old, update_modified=False)
		EcommerceSyncLog.clear_old_logs(days=30)
		remaining = set(frappe.get_all("Ecommerce Sync Log", pluck="name"))
		self.assertNotIn(success.name, remaining)
		self.assertTrue({failure.name, flagged.name, recent.name} <= remaining)

	def test_log_settings_offer_the_sync_log_for_clearing(self):
		from frappe.core.doctype.log_settings.log_settings import _supports_log_clearing

		self.assertTrue(_supports_log_clearing("Ecommerce Sync Log"))


class TestDesk(FrappeTestCase):
	"""The Settings form and the Sync Log list load in the Desk, over HTTP, for the people who use them."""

	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.web = utils.WebServer().start()

	@classmethod
	def tearDownClass(cls):
		cls.web.stop()
		super().tearDownClass()

	def _session(self, user, password):
		session = requests.Session()
		login = session.post(
			f"{self.web.url}/api/method/login", data={"usr": user, "pwd": password}, timeout=60
		)
		self.assertEqual(login.status_code, 200, login.text)
		return session

	def test_the_settings_form_and_sync_log_list_open(self):
		utils.user_with_roles("eb-admin@example.com", ["System Manager"], password="Adm1n!strat0r-Pass")
		frappe.db.commit()
		session = self._session("eb-admin@example.com", "Adm1n!strat0r-Pass")
		form = session.get(
			f"{self.web.url}/api/method/frappe.desk.form.load.getdoctype",
			params={"doctype": "Ecommerce Bridge Settings"},
			timeout=60,
		)
		self.assertEqual(form.status_code, 200, form.text[:500])
		self.assertIn("test_connection", form.text)
		page = session.get(f"{self.web.url}/app/ecommerce-sync-log", timeout=60)
		self.assertEqual(page.status_code, 200)

	def test_an_accountant_lists_the_sync_log_and_a_guest_cannot(self):
		utils.user_with_roles("eb-accountant@example.com", ["Accounts User"], password="Acc0unt!ng-Pass")
		frappe.db.commit()
		session = self._session("eb-accountant@example.com", "Acc0unt!ng-Pass")
		listing = session.get(
			f"{self.web.url}/api/method/frappe.desk.reportview.get",
			params={"doctype": "Ecommerce Sync Log", "fields": '["name","status"]'},
			timeout=60,
		)
		self.assertEqual(listing.status_code, 200, listing.text[:500])
		guest = requests.get(
			f"{self.web.url}/api/method/frappe.desk.reportview.get",
			params={"doctype": "Ecommerce Sync Log", "fields": '["name"]'},
			timeout=60,
		)
		self.assertEqual(guest.status_code, 403)
