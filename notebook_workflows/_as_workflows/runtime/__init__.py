"""``workflows.runtime``: only the names code outside the peer's runtime imports."""
