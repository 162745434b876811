"""Service providers: the interface (:mod:`.base`) and the default simulator (:mod:`.sim`)."""

from .base import CallContext, Provider, ProviderError
from .sim import SimProvider

__all__ = ["CallContext", "Provider", "ProviderError", "SimProvider"]
