"""Basics shared by every top-level package (gateway, commands, store, simulator).

Imports none of them, so any of them can import it.
"""
