frappe.listview_settings["Ecommerce Sync Log"] = {
	add_fields: ["status", "needs_attention"],
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
};
