"""Source adapters: everything before the lake's `raw/` zone, one kind per subpackage.

A kind is a spec model (`<kind>/spec.py`, light: the pipeline file's `source:` block) and an
adapter (`<kind>/adapter.py`, imported only when a pipeline of that kind runs). The registry
(`registry.py`) names both; nothing else in the engine knows which kinds exist.
"""
