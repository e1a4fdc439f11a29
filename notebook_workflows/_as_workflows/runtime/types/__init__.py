"""``workflows.runtime.types``."""
