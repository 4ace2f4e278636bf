"""The original project's import path (``braxviewer.brax.brax.training...``)."""
