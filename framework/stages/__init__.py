"""One module per stage; stages share only the spec, the target and the run context."""
