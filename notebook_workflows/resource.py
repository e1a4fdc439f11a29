"""Resource injection under llama-index-workflows' module path (``workflows.resource``).

Everything lives in ``resources``; this module re-exports it so code that imports
``notebook_workflows.resource`` ports unchanged.
"""

from .resources import *  # noqa: F403
from .resources import __all__  # noqa: F401
