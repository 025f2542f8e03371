"""JAX's persistent compilation cache, so that a model compiled once is not compiled again (issue 17).

Under JAX every new shape compiles: each weight initializer, the train step, the predict step. Within one
process JAX keeps what it compiled in memory; the persistent cache keeps it on disk for the next trial of
the same shapes in another worker process, a resumed study, or the next study. JAX's own thresholds skip
small programs (under a second of compilation), which is all of a small model's, so they are lowered.
"""

from __future__ import annotations

import os

from tuner._store import cache_dir

__all__ = ["enable_jax_compile_cache"]

_enabled: list[str] = []


def enable_jax_compile_cache() -> str | None:
    """Turn JAX's persistent compilation cache on for this process, once; returns its folder.

    The folder is ``$TUNER_JAX_CACHE``, else ``$JAX_COMPILATION_CACHE_DIR`` or one set in ``jax.config``,
    else ``$TUNER_CACHE_DIR/jax`` or ``~/.cache/tuner/jax``. ``TUNER_JAX_CACHE=none`` turns it off (None).
    """
    if _enabled:
        return _enabled[0] or None
    import jax

    folder = os.environ.get("TUNER_JAX_CACHE") or jax.config.jax_compilation_cache_dir or str(cache_dir() / "jax")
    if folder.lower() in ("none", "off", "0"):
        _enabled.append("")
        return None
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    _enabled.append(folder)
    return folder
