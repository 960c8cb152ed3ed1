"""Everything that draws: sequence diagrams, state machines, precedence graphs and plots.

Pictures draw what they are given and never compute a verdict.
"""
