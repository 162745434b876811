"""One module per `cxpar` sub-command; `cxpar.cli` registers them lazily."""
