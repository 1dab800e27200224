"""Example handlers shipped with the package (see custom_handler_example.py)."""
