"""Analysis: name resolution, service calls, events, cycles and the stream graph."""
