"""`cxpar repl`: ``session`` (state across entries), ``lexer`` (pygments), ``app`` (prompt)."""
