"""Syntax: reading files, the Lark LALR parser and the parse-tree-free AST builder."""
