"""Prometheus metrics, in a registry per app (no globals), with low-cardinality labels:
routes are path templates, dtypes/formats/engines are small closed sets."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from service.plan import Plan

GENERATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "weightgen_requests",
            "HTTP requests answered",
            ["route", "method", "status"],
            registry=r,
        )
        self.elements = Counter("weightgen_generated_elements", "elements generated", registry=r)
        self.bytes = Counter(
            "weightgen_generated_bytes",
            "tensor bytes generated",
            ["dtype", "format", "engine"],
            registry=r,
        )
        self.seconds = Histogram(
            "weightgen_generation_seconds",
            "seconds to generate one block",
            ["engine"],
            buckets=GENERATION_BUCKETS,
            registry=r,
        )
        self.streams = Counter("weightgen_streams", "tensor streams started", registry=r)
        self.in_flight = Gauge(
            "weightgen_streams_in_flight", "tensor streams being sent", registry=r
        )
        self.waiting = Gauge(
            "weightgen_streams_waiting", "requests waiting for a generation slot", registry=r
        )
        self.slot_wait = Histogram(
            "weightgen_slot_wait_seconds",
            "seconds a request that found every generation slot taken waited for one "
            "(WEIGHTGEN_SLOT_WAIT), by outcome: taken, full (503) or gone (the client left)",
            ["outcome"],
            buckets=WAIT_BUCKETS,
            registry=r,
        )
        self.threads = Gauge(
            "weightgen_threads",
            "threads of the fused CPU kernel per block (WEIGHTGEN_THREADS: by default the CPUs "
            "of the affinity mask and the cgroup quota)",
            registry=r,
        )
        self.kernel = Gauge(
            "weightgen_kernel_info",
            "1 for the build of the fused CPU kernel in use: avx512, avx2, portable or none",
            ["build"],
            registry=r,
        )

    def kernel_in_use(self, build: str | None) -> None:
        self.kernel.labels(build or "none").set(1)

    def threads_in_use(self, threads: int) -> None:
        self.threads.set(threads)

    def slot_waited(self, outcome: str, seconds: float) -> None:
        self.slot_wait.labels(outcome).observe(seconds)

    def generated(self, plan: Plan, fmt: str, elements: int, nbytes: int, seconds: float) -> None:
        """Called from worker threads; prometheus_client's metrics are thread-safe."""
        self.elements.inc(elements)
        self.bytes.labels(plan.dtype.name, fmt, plan.engine.name).inc(nbytes)
        self.seconds.labels(plan.engine.name).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
