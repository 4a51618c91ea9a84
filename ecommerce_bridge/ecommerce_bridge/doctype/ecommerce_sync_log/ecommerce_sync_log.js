// The form an accountant opens from a failure: the reason first, a Retry button when it can help.
frappe.ui.form.on("Ecommerce Sync Log", {
	refresh(frm) {
		const doc = frm.doc;
		if (doc.error && (doc.status === "Failed" || doc.status === "Partial" || doc.needs_attention)) {
			frm.dashboard.set_headline_alert(
				`<div class="text-danger">${frappe.utils.escape_html(doc.error)}</div>`
			);
		}
		frm.get_field("payload_view").$wrapper.html(readable_payloads(doc));
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

// The stored payload stays byte for byte what was sent (its signature covers it); this only shows it indented.
function readable_payloads(doc) {
	const block = (label, raw) => {
		if (!raw) return "";
		let text = raw;
		try {
			text = JSON.stringify(JSON.parse(raw), null, 2);
		} catch (e) {
			// not JSON: shown as it came
		}
		return `<div class="text-muted small">${__(label)}</div>
			<pre style="max-height: 24em; overflow: auto">${frappe.utils.escape_html(text)}</pre>`;
	};
	return block("Request", doc.request_payload) + block("Response", doc.response);
}
