"""The contract both sides share: what a viewer is, what a chunk is,
modes, fan-out, timelines, the host side of a stream. numpy only: no
JAX, no MuJoCo, no web.
"""
