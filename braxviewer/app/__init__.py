"""The command line and the demos: one module per subcommand, and what
they share (flags, a training session that stops cleanly on Ctrl-C,
quiet output, the compile cache).
"""
