frappe.query_reports["Order Reconciliation"] = {
	filters: [
		{
			fieldname: "from_date",
			label: __("From Date"),
			fieldtype: "Date",
			reqd: 1,
			default: frappe.datetime.add_months(frappe.datetime.get_today(), -1),
		},
		{
			fieldname: "to_date",
			label: __("To Date"),
			fieldtype: "Date",
			reqd: 1,
			default: frappe.datetime.get_today(),
		},
		{
			fieldname: "only_problems",
			label: __("Only Orders That Need a Look"),
			fieldtype: "Check",
		},
		{
			fieldname: "compare_with_storefront",
			label: __("Compare with the Storefront's Orders"),
			fieldtype: "Check",
		},
	],
	formatter(value, row, column, data, default_formatter) {
		value = default_formatter(value, row, column, data);
		if (column.fieldname === "result" && data) {
			const colour = data.needs_look ? "red" : data.result === "OK" ? "green" : "blue";
			value = `<span class="indicator-pill ${colour}">${value}</span>`;
		}
		return value;
	},
};
