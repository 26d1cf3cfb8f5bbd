"""Prometheus metrics of the server (NFR-2): served at /metrics on the HTTP listener."""

from prometheus_client import Counter, Gauge, Histogram

CONNECTIONS = Gauge("imserver_connections", "Authenticated WebSocket connections")
REQUESTS = Counter("imserver_requests_total", "Requests handled, by op", ["op"])
ERRORS = Counter("imserver_errors_total", "Error frames sent, by code", ["code"])
MESSAGES_IN = Counter("imserver_messages_in_total", "Messages committed")
FRAMES_OUT = Counter("imserver_frames_out_total", "Frames queued to connections")
DISCONNECTS = Counter("imserver_disconnects_total", "Connections closed by the server, by reason", ["reason"])
BATCH_SIZE = Histogram(
    "imserver_batch_size", "Messages per committed batch",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
)
COMMIT_SECONDS = Histogram(
    "imserver_commit_seconds", "Time to commit one batch of messages",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1),
)
WRITER_QUEUE = Gauge("imserver_writer_queue_depth", "Messages waiting for the batch writer")
OUTBOUND_QUEUE = Gauge("imserver_outbound_queue_depth", "Frames waiting in all connections' outbound queues")
SENDS_SHED = Counter(
    "imserver_sends_shed_total",
    "Sends refused with unavailable at once because the writer's queues were full, by the bound reached",
    ["bound"],
)
