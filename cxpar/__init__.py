"""cxpar: a compiler and runtime for CX, with parallel handler parameters."""

__version__ = "0.1.0"
