"""dtcourse: an interactive course on distributed transactions.

Importing the package has no side effects: nothing is configured, opened or drawn.
"""

__version__ = "0.1.0"
