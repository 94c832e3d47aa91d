"""Tandem's developer kit: what `make run`, tests/e2e, tests/k8s and bench/ share.

- ``stack``: starts one core per model and the gateway on loopback (`make run`
  runs it; the e2e tests and benchmarks start their processes with it).
- ``otlp_receiver``: the OTLP/gRPC trace receiver every suite reads spans from.
- ``reference``: the reference vectors made with the official pipeline.
"""
