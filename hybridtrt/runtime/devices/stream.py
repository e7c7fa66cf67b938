"""The CUDA stream a GPU predictor runs on, and the device-wide waits and copies on it."""

from __future__ import annotations

from typing import Protocol

from hybridtrt.errors import ConfigError, ExecutionError

__all__ = ["CudaStream", "Stream"]


class Stream(Protocol):
    """What the CUDA device needs of its stream (tests put host memory behind it)."""

    handle: int  # the ``cudaStream_t``, as ORT's ``user_compute_stream`` and TensorRT take it

    def synchronize(self) -> None:
        """Wait for the work queued on the stream."""
        ...

    def synchronize_device(self) -> None:
        """Wait for all work on the device (streams not ordered with this one)."""
        ...

    def copy(self, target: int, source: int, size: int) -> None:
        """Queue a device-to-device copy of ``size`` bytes."""
        ...

    def wait_for(self, other: int) -> None:
        """Make this stream's later work wait for the work queued on stream ``other`` so far
        (on the device: the host does not wait)."""
        ...

    def hold(self, other: int) -> None:
        """Make stream ``other``'s later work wait for the work queued on this stream so far."""
        ...


class CudaStream:
    """A stream of its own on one GPU (through cuda-python).

    Args:
        device_id: The GPU.
        blocking: Ordered with the legacy default stream (cupy's and torch's default), so device
            inputs are complete before segments read them. CUDA graph capture needs a
            non-blocking one (the device then synchronizes before reading a caller's arrays).
    """

    def __init__(self, device_id: int, blocking: bool = True) -> None:
        try:
            from cuda.bindings import runtime as cudart
        except ImportError as exc:
            raise ConfigError("running on the GPU needs cuda-python: pip install 'hybridtrt[gpu]'") from exc
        (err,) = cudart.cudaSetDevice(device_id)
        if int(err) != 0:
            raise ConfigError(f"cannot use CUDA device {device_id}: {err}")
        if blocking:
            err, stream = cudart.cudaStreamCreate()
        else:
            err, stream = cudart.cudaStreamCreateWithFlags(cudart.cudaStreamNonBlocking)
        if int(err) != 0:
            raise ConfigError(f"cannot create a CUDA stream on device {device_id}: {err}")
        # (``int`` gives the handle; cuda-python versions without it have ``getPtr``)
        self.handle = int(stream) if hasattr(stream, "__int__") else int(stream.getPtr())
        err, self._event = cudart.cudaEventCreateWithFlags(cudart.cudaEventDisableTiming)
        if int(err) != 0:
            raise ConfigError(f"cannot create a CUDA event on device {device_id}: {err}")

    def synchronize(self) -> None:
        from cuda.bindings import runtime as cudart

        _check(cudart.cudaStreamSynchronize(self.handle)[0], "cudaStreamSynchronize")

    def synchronize_device(self) -> None:
        from cuda.bindings import runtime as cudart

        _check(cudart.cudaDeviceSynchronize()[0], "cudaDeviceSynchronize")

    def copy(self, target: int, source: int, size: int) -> None:
        from cuda.bindings import runtime as cudart

        kind = cudart.cudaMemcpyKind.cudaMemcpyDeviceToDevice
        _check(cudart.cudaMemcpyAsync(target, source, size, kind, self.handle)[0],
               "cudaMemcpyAsync")


    def wait_for(self, other: int) -> None:
        _order(self._event, other, self.handle)

    def hold(self, other: int) -> None:
        _order(self._event, self.handle, other)


def _order(event: object, first: int, then: int) -> None:
    """Stream ``then`` waits on the device for the work queued on stream ``first`` so far (an
    event re-recorded: a wait takes the event's state when it is queued)."""
    from cuda.bindings import runtime as cudart

    _check(cudart.cudaEventRecord(event, first)[0], "cudaEventRecord")
    _check(cudart.cudaStreamWaitEvent(then, event, 0)[0], "cudaStreamWaitEvent")


def _check(err: object, call: str) -> None:
    if int(err) != 0:  # type: ignore[call-overload]
        raise ExecutionError(f"{call} failed: {err}")
