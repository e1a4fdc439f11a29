"""``workflows.resource``."""

from ..resources import *  # noqa: F403
from ..resources import __all__  # noqa: F401
