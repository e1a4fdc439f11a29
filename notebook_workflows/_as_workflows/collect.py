"""``workflows.collect``."""

from ..collect import *  # noqa: F403
from ..collect import __all__  # noqa: F401
