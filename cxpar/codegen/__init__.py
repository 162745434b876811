"""Code generators: the python backend (default) and the llvm dispatch backend."""
