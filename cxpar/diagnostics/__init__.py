"""Diagnostics: the data model, stable codes, suggestions and renderers."""

from cxpar.diagnostics.model import Diagnostic, Label, Severity

__all__ = ["Diagnostic", "Label", "Severity"]
