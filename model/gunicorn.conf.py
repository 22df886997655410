"""gunicorn settings for the model server image (read-only root filesystem).

One worker process with threads: the Prometheus metrics live in that process,
so /metrics is complete without multiprocess mode. Scale with replicas.
"""

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8080')}"
workers = 1
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = 30
graceful_timeout = 20
keepalive = 5
# The heartbeat file lives on the /tmp emptyDir; nothing else is written.
worker_tmp_dir = os.environ.get("TMPDIR", "/tmp")  # noqa: S108 - the mounted emptyDir
# gunicorn 24+ opens a control socket under $HOME by default; not needed here.
control_socket_disable = True
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")
wsgi_app = "model_server.app:create_app()"
