frappe.query_reports["SKU Audit"] = {
	filters: [
		{
			fieldname: "check",
			label: __("Check"),
			fieldtype: "Select",
			options: [
				"",
				"SKU collision",
				"Missing price",
				"Unknown to ERPNext",
				"Disabled but published",
				"Warehouse outside company",
			],
		},
		{
			fieldname: "compare_with_storefront",
			label: __("Compare with the Storefront's Catalogue"),
			fieldtype: "Check",
			default: 1,
		},
	],
};
