"""Train a scikit-learn model on the bundled breast cancer dataset and monitor it with modelwatch.

    modelwatch serve --addr 127.0.0.1:8080 &          # the server
    MODELWATCH_URL=http://127.0.0.1:8080 python3 clients/python/examples/breast_cancer.py

1. trains a StandardScaler + LogisticRegression pipeline on 70% of the data;
2. uploads the training set (features, predictions, labels) as the reference for drift;
3. wraps the model: one line, and every predict_proba call is logged in the background;
4. "serves" the other 30% in small requests, keeping the request id of every row;
5. later, the ground truth arrives: logs the labels by request id (joined by the server);
6. flushes and reads the metrics back as a pandas DataFrame.
"""

from __future__ import annotations

import logging
import os

from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import modelwatch


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    url = os.environ.get("MODELWATCH_URL", "http://127.0.0.1:8080")
    model_name = os.environ.get("MODELWATCH_MODEL", "breast-cancer")

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_train, X_live, y_train, y_live = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X_train, y_train)

    monitor = modelwatch.Monitor(url, model_name, version="v1", tags={"site": "example"})

    # The reference (baseline) dataset: training features with predictions and labels.
    reference = X_train.copy()
    reference["prediction"] = model.predict(X_train)
    reference["label"] = y_train.to_numpy()
    try:
        print("reference:", monitor.upload_reference(reference))
    except modelwatch.ModelwatchError as e:  # synchronous calls raise; logging calls never do
        print("reference upload failed (monitoring continues without drift baseline):", e)

    # One line: the wrapped model behaves exactly like `model` and logs every row in the background.
    model = monitor.wrap(model)

    request_ids = []
    for start in range(0, len(X_live), 8):  # requests of 8 rows
        batch = X_live.iloc[start:start + 8]
        proba = model.predict_proba(batch)  # same ndarray as the bare pipeline returns
        request_ids.extend(model.last_request_ids)  # one id per row, to join labels later
        _ = proba[:, 1] > 0.5

    # Days later the ground truth arrives: join it by request id.
    monitor.log_labels(request_ids, y_live.tolist())

    delivered = monitor.flush(timeout=30)
    print("delivered:", delivered, {k: v for k, v in monitor.stats().items() if k.endswith("_rows")})

    metrics = monitor.metrics(window="1d")
    print(metrics.T.to_string())
    monitor.close()


if __name__ == "__main__":
    main()
