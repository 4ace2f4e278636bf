"""Per-env traces: reward, reward terms and resets over the last frames shown.

A fixed-size ring buffer per quantity, so memory stays flat over a long run.
Pure numpy.
"""

from __future__ import annotations

import threading
from typing import Dict, Mapping, Optional, Tuple

import numpy as np

DEFAULT_WINDOW = 300  # frames of each env kept for its chart
# Names of the columns of a Playground velocity command (state.info).
_COMMAND_COLUMNS = ("vx", "vy", "wz")


def info_columns(name: str, value: np.ndarray) -> Dict[str, np.ndarray]:
  """One per-env ``state.info`` entry, ``(N,)`` or ``(N, k)``, as named
  ``(N,)`` columns: ``name``, or ``name[i]`` (``command vx/vy/wz`` for a
  velocity command)."""
  value = np.asarray(value, dtype=np.float64)
  if value.ndim == 1:
    return {name: value}
  value = value.reshape(len(value), -1)
  k = value.shape[1]
  if k == 1:
    return {name: value[:, 0]}
  if name == "command" and k <= len(_COMMAND_COLUMNS):
    return {
      f"command {c}": value[:, i] for i, c in enumerate(_COMMAND_COLUMNS[:k])
    }
  return {f"{name}[{i}]": value[:, i] for i in range(k)}


class EnvTraces:
  """Reward, reward terms and done of every env over the last frames shown.

  Args:
    num_envs: envs on display.
    window: frames kept.
  """

  def __init__(self, num_envs: int, window: int = DEFAULT_WINDOW):
    self.num_envs = num_envs
    self.window = window
    self._lock = threading.Lock()
    self._t = np.full(window, np.nan)
    self._reward = np.full((window, num_envs), np.nan)
    self._done = np.zeros((window, num_envs), dtype=bool)
    self._terms: Dict[str, np.ndarray] = {}
    self._info: Dict[str, np.ndarray] = {}
    self._head = 0
    self._count = 0
    self.episode_return = np.zeros(num_envs)
    self.last_return = np.full(num_envs, np.nan)
    self.resets = np.zeros(num_envs, dtype=np.int64)
    self.dirty = False

  def push(
    self,
    t: float,
    reward: np.ndarray,
    done: np.ndarray,
    terms: Mapping[str, np.ndarray],
    info: Optional[Mapping[str, np.ndarray]] = None,
  ) -> None:
    """Append one frame: ``reward``/``done``/each term are ``(num_envs,)``;
    each ``info`` entry ``(num_envs,)`` or ``(num_envs, k)``."""
    with self._lock:
      i = self._head
      self._t[i] = t
      self._reward[i] = reward
      done = np.asarray(done) > 0
      self._done[i] = done
      for name, value in terms.items():
        buf = self._terms.get(name)
        if buf is None:
          buf = self._terms[name] = np.full(
            (self.window, self.num_envs), np.nan
          )
        buf[i] = value
      for key, value in (info or {}).items():
        for name, column in info_columns(key, value).items():
          buf = self._info.get(name)
          if buf is None:
            buf = self._info[name] = np.full(
              (self.window, self.num_envs), np.nan
            )
          buf[i] = column
      self._head = (i + 1) % self.window
      self._count = min(self._count + 1, self.window)
      self.episode_return += np.nan_to_num(reward)
      self.last_return = np.where(done, self.episode_return, self.last_return)
      self.episode_return[done] = 0.0
      self.resets += done
      self.dirty = True

  def series(self, env: int) -> Tuple[Tuple[str, ...], Tuple[np.ndarray, ...]]:
    """(labels, data) for the chart of ``env``: time, reward, terms, resets."""
    with self._lock:
      order = (np.arange(self._count) + self._head - self._count) % self.window
      t = self._t[order]
      reward = self._reward[order, env]
      done_at = self._done[order, env].astype(np.float64)
      labels = ["reward"] + list(self._terms) + ["reset"]
      data = [t, reward] + [b[order, env] for b in self._terms.values()]
      data = [np.nan_to_num(d, nan=0.0) for d in data]
      data.append(done_at)
      return tuple(labels), tuple(np.asarray(d, np.float64) for d in data)

  def info_series(
    self, env: int
  ) -> Tuple[Tuple[str, ...], Tuple[np.ndarray, ...]]:
    """(labels, data) of ``env``'s streamed ``state.info`` columns: time,
    each column, resets. Empty labels when nothing of it is streamed."""
    with self._lock:
      if not self._info:
        return (), ()
      order = (np.arange(self._count) + self._head - self._count) % self.window
      labels = list(self._info) + ["reset"]
      data = [self._t[order]]
      data += [np.nan_to_num(b[order, env]) for b in self._info.values()]
      data.append(self._done[order, env].astype(np.float64))
      return tuple(labels), tuple(np.asarray(d, np.float64) for d in data)

  def latest_info(self, env: int) -> Dict[str, float]:
    """The newest ``state.info`` columns of ``env``."""
    with self._lock:
      if not self._count:
        return {}
      i = (self._head - 1) % self.window
      return {k: float(b[i, env]) for k, b in self._info.items()}

  def latest(self, env: int) -> Dict[str, float]:
    """The newest reward and terms of ``env``."""
    with self._lock:
      if not self._count:
        return {}
      i = (self._head - 1) % self.window
      out = {"reward": float(self._reward[i, env])}
      out.update({k: float(b[i, env]) for k, b in self._terms.items()})
      return out
