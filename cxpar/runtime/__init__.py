"""The cxpar runtime: what compiled CX programs call (see docs/runtime.md).

Independent of the compiler: it imports only :mod:`cxpar.span` and :mod:`cxpar.lang`.
"""

from . import values
from .bus import Bus
from .clock import VirtualEventLoop, new_loop
from .coordinator import DEPTH
from .errors import CxRuntimeError, render_error
from .providers import CallContext, Provider, ProviderError, SimProvider
from .run import run_program
from .scheduler import PLUGIN_SERVICES, ClassDef, Runtime, service
from .tracing import Recorder
from .values import Instance

__all__ = [
    "Bus", "CallContext", "ClassDef", "CxRuntimeError", "DEPTH", "Instance",
    "PLUGIN_SERVICES", "Provider", "ProviderError", "Recorder", "Runtime", "SimProvider",
    "VirtualEventLoop", "new_loop", "render_error", "run_program", "service", "values",
]
