frappe.listview_settings["Ecommerce Sync Log"] = {
	add_fields: ["status", "needs_attention", "error"],
	get_indicator(doc) {
		if (doc.needs_attention && doc.status === "Success") {
			return [__("Needs Attention"), "orange", "needs_attention,=,1"];
		}
		const colours = {
			Queued: "blue",
			Processing: "purple",
			Success: "green",
			Partial: "orange",
			Failed: "red",
			Skipped: "gray",
		};
		return [__(doc.status), colours[doc.status] || "gray", "status,=," + doc.status];
	},
	onload(listview) {
		frappe.xcall("ecommerce_bridge.desk.retry_allowed").then((allowed) => {
			if (!allowed) return;
			listview.page.add_actions_menu_item(__("Retry"), () => {
				const names = listview.get_checked_items(true);
				if (!names.length) return;
				frappe.confirm(__("Replay {0} rows from what they stored?", [names.length]), () => {
					frappe.xcall("ecommerce_bridge.desk.retry", { names }).then((answer) => {
						frappe.show_alert({ message: answer.message, indicator: "blue" });
						listview.refresh();
					});
				});
			});
		});
	},
};
