"""The jit side and everything a trainer uses: the tap, eval rollouts,
epoch calls, the wrapper for any loop, the progress bar, the trainer kit,
and braxviewer's PPO and SAC.
"""
