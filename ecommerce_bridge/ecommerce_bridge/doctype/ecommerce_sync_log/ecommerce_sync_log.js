// The form an accountant opens from a failure: the reason first, a Retry button when it can help.
frappe.ui.form.on("Ecommerce Sync Log", {
	refresh(frm) {
		const doc = frm.doc;
		if (doc.error && (doc.status === "Failed" || doc.status === "Partial" || doc.needs_attention)) {
			frm.dashboard.set_headline_alert(
				`<div class="text-danger">${frappe.utils.escape_html(doc.error)}</div>`
			);
		}
		const retryable = ["Failed", "Partial"].includes(doc.status) || doc.needs_attention;
		if (retryable && frm.doc.__onload && frm.doc.__onload.can_retry) {
			frm.add_custom_button(__("Retry"), () => {
				frappe
					.xcall("ecommerce_bridge.desk.retry", { names: [doc.name] })
					.then((answer) => {
						frappe.show_alert({ message: answer.message, indicator: "blue" });
						frm.reload_doc();
					});
			}).addClass("btn-primary");
		}
	},
});
