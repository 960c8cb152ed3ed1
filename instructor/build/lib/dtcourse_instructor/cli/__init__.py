"""Instructor commands, found by ``dtcourse`` through the ``dtcourse.commands`` entry points."""
