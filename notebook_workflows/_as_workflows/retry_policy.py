"""``workflows.retry_policy``."""

from ..retry_policy import *  # noqa: F403
from ..retry_policy import __all__  # noqa: F401
