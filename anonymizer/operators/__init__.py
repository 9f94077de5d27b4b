"""Operators: one transformation (or record-level setting) per module, one registered list.

`operator.py` is the interface, `registry.py` the explicit list and the owner of each policy key.
"""
