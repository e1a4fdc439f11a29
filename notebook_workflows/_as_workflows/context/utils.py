"""``workflows.context.utils``."""

from ...naming import get_qualified_name, import_module_from_qualified_name

__all__ = ["get_qualified_name", "import_module_from_qualified_name"]
