"""``workflows.events``."""

from ..events import *  # noqa: F403
from ..events import __all__  # noqa: F401
