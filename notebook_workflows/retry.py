"""Retry policies under this project's first module name.

Everything lives in ``retry_policy`` (the module path llama-index-workflows uses); this module
re-exports it so ``from notebook_workflows.retry import ...`` keeps working.
"""

from .retry_policy import *  # noqa: F403
from .retry_policy import __all__  # noqa: F401
