"""Thread counts that change results, set the same way in every runner (threads, Dask worker
processes, a GPU pool worker), so a source is heard the same wherever its task runs.

- numpy's BLAS: a matmul split over another number of threads rounds differently in the last bit,
  and whisper's log-mel features go through one (faster-whisper's `mel_filters @ magnitudes`);
  that bit was enough to change words ("Never tried" / "Ever tried"). Dask's nanny starts workers
  with one BLAS thread (OMP_NUM_THREADS=1), so every runner uses one.
- CTranslate2: given its thread count explicitly, never left to OMP_NUM_THREADS, which differs
  between the flow's process and a Dask worker.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading

BLAS_THREADS = 1

_pinned = False
_lock = threading.Lock()


def pin_blas_threads() -> None:
    """Limit every BLAS library loaded in this process to BLAS_THREADS, once per process."""
    global _pinned
    with _lock:
        if _pinned:
            return
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=BLAS_THREADS, user_api="blas")  # kept for the life of the process
        _pinned = True


def ctranslate2_threads(configured: int | None) -> int:
    """Threads per CTranslate2 model: the configured count, else one per core of this machine."""
    return configured or os.cpu_count() or 1


_torch_threads: int | None = None


def use_torch_threads(configured: int | None) -> None:
    """runtime.torch_threads for this process: applied now if torch is loaded, and by whoever loads it
    later (`apply_torch_threads`). Called by each stage that can run torch, in whichever process runs it."""
    global _torch_threads
    _torch_threads = configured
    if "torch" in sys.modules:
        apply_torch_threads()


def torch_threads() -> int:
    """torch's intra-op threads: the configured count, else one per core."""
    return _torch_threads or os.cpu_count() or 1


def preload_torch() -> None:
    """Import torch in the calling thread before a stage starts threads that may load it. While one
    thread is halfway through importing torch, the half-built module already sits in sys.modules,
    and SciPy's and scikit-learn's array-API checks look torch up there without importing it
    (`array_api_compat`'s `is_torch_array`): a thread clustering voices or fitting a calibration
    meanwhile fails with "partially initialized module 'torch' has no attribute 'Tensor'". Seen in
    the demo: stage 2's word-speaker step loaded torch while another source's diarizer clustered."""
    if importlib.util.find_spec("torch") is not None:
        import torch  # noqa: F401  (loaded whole, here, before any other thread can look at it)


def apply_torch_threads() -> None:
    # also after `import silero_vad`, which sets torch to one thread for the whole process
    import torch  # imported late: the CUDA build takes seconds to import

    if torch.get_num_threads() != torch_threads():
        torch.set_num_threads(torch_threads())
