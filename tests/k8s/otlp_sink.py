"""An OTLP/gRPC trace receiver for a pod: prints every span it receives as a JSON line.

It reuses scripts/otlp_receiver.py's servicer (shipped beside it in the same
ConfigMap) but listens on all of the pod's addresses, so the core and the
gateway in the cluster can export to it through a Service. tests/k8s reads
the spans back from the pod's log.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import sys
import threading
from concurrent import futures

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from otlp_receiver import ReceivedSpan, _TraceService


def main() -> int:
    lock = threading.Lock()

    def sink(span: ReceivedSpan) -> None:
        line = json.dumps(dataclasses.asdict(span), default=str)
        with lock:
            print(line, flush=True)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(sink), server)
    server.add_insecure_port("[::]:4317")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server.start()
    print(json.dumps({"listening": 4317}), flush=True)
    stop.wait()
    server.stop(grace=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
