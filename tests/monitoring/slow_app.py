"""The model server's app, unchanged, answering /predict ``SLOW_PREDICT_SECONDS`` late.

    gunicorn --config model/gunicorn.conf.py slow_app:app     (tests only)

The delay is a ``before_request`` hook registered after ``create_app()``'s own timer
hook, so it falls inside the time the app measures and shows in its latency
histogram, as a slow model would.
"""

from __future__ import annotations

import os
import time

from flask import request
from model_server.app import create_app

DELAY_SECONDS = float(os.environ.get("SLOW_PREDICT_SECONDS", "0.3"))

app = create_app()


@app.before_request
def _slow_predict() -> None:
    if request.path == "/predict":
        time.sleep(DELAY_SECONDS)
