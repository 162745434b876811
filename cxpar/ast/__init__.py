"""The CX abstract syntax tree: nodes, visitors, printer and dump."""
