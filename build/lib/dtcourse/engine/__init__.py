"""The verification engine: models, the model checker, actors, the simulator and traces.

It knows nothing about commit protocols, the course or Jupyter; every layer above builds
on it and it imports nothing above it (the import rules are tested).
"""
