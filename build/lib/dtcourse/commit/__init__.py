"""The vocabulary of atomic commitment: properties AC1-AC5, specifications, protocols
that are no exercise answer, and their costs."""
