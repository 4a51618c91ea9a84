frappe.ui.form.on("Ecommerce Bridge Settings", {
	refresh(frm) {
		frm.set_query("order_warehouse", () => ({ filters: { is_group: 0, company: frm.doc.company } }));
		frm.set_query("warehouse", "warehouses", () => ({ filters: { company: frm.doc.company } }));
		frm.set_query("price_list", () => ({ filters: { selling: 1 } }));
		for (const field of ["shipping_account"]) {
			frm.set_query(field, () => ({ filters: { company: frm.doc.company, is_group: 0 } }));
		}
		for (const table of ["tax_accounts", "payment_accounts"]) {
			frm.set_query("account", table, () => ({ filters: { company: frm.doc.company, is_group: 0 } }));
		}
		frappe.realtime.off("ecommerce_bridge_resync");
		frappe.realtime.on("ecommerce_bridge_resync", (data) => {
			frm.dashboard.show_progress(__("Full Resync"), (data.done / Math.max(data.total, 1)) * 100, data.message);
			if (data.done >= data.total) {
				setTimeout(() => frm.dashboard.hide_progress(__("Full Resync")), 3000);
			}
		});
	},
	test_connection(frm) {
		frappe.call({
			method: "ecommerce_bridge.ecommerce_bridge.doctype.ecommerce_bridge_settings.ecommerce_bridge_settings.test_connection",
			freeze: true,
			freeze_message: __("Calling the storefront..."),
			callback: (r) => {
				const answer = r.message || {};
				frappe.msgprint({
					title: answer.ok ? __("Storefront reachable") : __("Storefront not reachable"),
					message: answer.message,
					indicator: answer.ok ? "green" : "red",
				});
			},
		});
	},
	full_resync(frm) {
		frappe.confirm(__("Push every published Item, price and stock level to the storefront now?"), () => {
			frappe.call({
				method: "ecommerce_bridge.ecommerce_bridge.doctype.ecommerce_bridge_settings.ecommerce_bridge_settings.start_full_resync",
				callback: (r) => frappe.show_alert({ message: r.message, indicator: "blue" }),
			});
		});
	},
});
