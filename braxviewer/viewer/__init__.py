"""What every viewer backend shares: pushing states from a Python loop,
the in-memory backend. No JAX, no web.
"""
