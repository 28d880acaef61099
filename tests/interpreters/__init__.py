"""Interpreters for the query subsets siemc's backends emit, for targets with no offline engine.

They read the query text (never siemc's IR) and follow each vendor's documented semantics; they
live with the tests, not in the compiler.
"""
