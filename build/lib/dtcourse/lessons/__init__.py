"""Small, real systems that show a problem before the course solves it, without its answer.

Each lab runs against real storage (SQLite files in a folder the caller owns) and returns
plain values: the final state, and a ``Trace`` of what happened so it can be drawn.
"""
