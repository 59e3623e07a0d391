"""modelwatch: log predictions and labels from Python models to a modelwatch server.

    from modelwatch import Monitor
    monitor = Monitor("http://127.0.0.1:8080", model="fraud", version="v3")
    model = monitor.wrap(model)          # predict/predict_proba now log, in the background

See the README for the delivery guarantees (background thread, bounded queue, on-disk spool,
at-least-once delivery de-duplicated by the server on request_id).
"""

__version__ = "0.1.0"

from ._transport import ModelwatchError  # noqa: E402
from .monitor import Monitor, RequestIds  # noqa: E402
from .wrap import MonitoredEstimator  # noqa: E402

__all__ = ["Monitor", "MonitoredEstimator", "RequestIds", "ModelwatchError", "__version__"]
