"""Library lines that repeat every step are collapsed in the demos and the
CLI: shown once, counted, summarized; Python's own prints untouched."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_a_line_printed_every_step_by_compiled_code_shows_once_with_a_count():
  script = textwrap.dedent("""
    import os, sys
    from braxviewer.app.quiet import CollapseRepeats
    with CollapseRepeats():
      for i in range(2000):  # as a C library's printf would: fd 1 itself
        os.write(1, f"solver iterations limit reached - beyond {i}\\n".encode())
      os.write(1, b"a line once\\n")
      print("python's own print", flush=True)
    print("after", flush=True)
    """)
  result = subprocess.run(
    [sys.executable, "-c", script],
    capture_output=True,
    text=True,
    timeout=60,
    check=True,
  )
  lines = result.stdout.splitlines()
  assert lines.count("solver iterations limit reached - beyond 0") == 1
  assert not any("beyond 1999" in line for line in lines)
  assert "a line once" in lines and "python's own print" in lines
  assert lines[-1] == "after"
  assert "1,999 more lines like" in result.stderr
  assert "--verbose" in result.stderr
