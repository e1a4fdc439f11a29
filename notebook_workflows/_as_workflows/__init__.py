"""llama-index-workflows' module layout, over this engine.

After ``notebook_workflows.install_as_workflows()``, ``import workflows.X`` gives the module
``notebook_workflows._as_workflows.X``. Each module here holds this engine's own classes under
the name and path the peer gives them (``workflows.context.serializers.PickleSerializer`` is
``notebook_workflows.serializers.PickleSerializer``): nothing here is a second implementation.
"""

from ..context import Context
from ..decorators import catch_error
from ..step import step
from ..workflow import Workflow

__all__ = ["Context", "Workflow", "catch_error", "step"]
