"""YAML recipes of the ila method (package data, read through core.Method.configs)."""
