"""Noise schedules that diffusers has no name for, given to its schedulers as ``trained_betas``.

``cosine_tau_<tau>`` (the paper's release: ``cosine_tau_2``) discretises
``alpha_bar(t) = cos(((t + 0.008) / 1.008) * pi / 2) ** (2 * tau)`` on ``t = i / N``, with
``beta_i = min(1 - alpha_bar((i + 1) / N) / alpha_bar(i / N), 0.999)``. ``tau = 1`` is diffusers'
``squaredcos_cap_v2`` (alpha_bar = cos^2); ``tau = 2`` squares it (alpha_bar = cos^4), so noise comes in
faster and the last steps are noisier. Computed in float64 like the release; diffusers stores float32.
"""

from __future__ import annotations

import math

MAX_BETA = 0.999
COSINE_TAU_PREFIX = "cosine_tau_"


def cosine_tau_alpha_bar(t: float, tau: float) -> float:
    """The continuous alpha_bar of ``cosine_tau_<tau>`` at ``t`` in [0, 1]."""
    return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** (2 * tau)


def cosine_tau_betas(num_steps: int, tau: float, max_beta: float = MAX_BETA) -> list[float]:
    """[num_steps] betas of ``cosine_tau_<tau>`` (python floats, float64 precision)."""
    if num_steps < 1 or tau <= 0:
        raise ValueError(f"cosine_tau_betas: need num_steps >= 1 and tau > 0, got {num_steps}, {tau}")
    betas = []
    for i in range(num_steps):
        a1 = cosine_tau_alpha_bar(i / num_steps, tau)
        a2 = cosine_tau_alpha_bar((i + 1) / num_steps, tau)
        betas.append(min(1.0 - a2 / a1, max_beta))
    return betas


def named_trained_betas(beta_schedule: str, num_steps: int) -> list[float] | None:
    """``trained_betas`` for a schedule name diffusers does not know (``cosine_tau_<tau>``), else None
    (a diffusers name such as ``squaredcos_cap_v2``, which diffusers computes itself)."""
    if not beta_schedule.startswith(COSINE_TAU_PREFIX):
        return None
    tail = beta_schedule[len(COSINE_TAU_PREFIX) :]
    try:
        tau = float(tail)
    except ValueError:
        raise ValueError(
            f"diffusion.beta_schedule: '{beta_schedule}' should be cosine_tau_<number> (e.g. cosine_tau_2)"
        ) from None
    return cosine_tau_betas(int(num_steps), tau)
