"""`cxpar lsp`: a Language Server over stdio (pygls + lsprotocol, the `lsp` extra).

Features are thin handlers (:mod:`cxpar.lsp.features`) over one cached
:func:`cxpar.lsp.analysis.analyze`; positions are converted in one place
(:mod:`cxpar.lsp.positions`) between LSP columns (UTF-16 by default) and CX's
code-point columns.
"""
