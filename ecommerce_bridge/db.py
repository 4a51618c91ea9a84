"""Small database helpers that several rooms share."""


def escape_like(text: str) -> str:
	"""``text`` for a SQL LIKE pattern, matching itself only (its ``%`` and ``_`` are no wildcards)."""
	return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
