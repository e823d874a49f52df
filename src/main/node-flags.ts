// The V8 flags `sinkhole serve` runs with. package.json's start script, the wrapper that
// systemd/install.sh writes, and the benchmark (bench/processes.ts startSinkhole, used by the
// throughput, latency and reload runs) all pass them; a test keeps them the same.
//
// Why: by default V8 starts the young generation at 1 MB, grows it to 16 MB under load and
// shrinks it again when the load pauses. At 16 MB each scavenge copies ~3 ms worth of
// survivors at 40k queries/s, and while it is resized objects of queries in flight get
// promoted, which brings on mark-compacts of 5-20 ms. A fixed 4 MB young generation is
// scavenged every ~40 ms at that load, in about 1 ms, and a query's objects (alive for well
// under a millisecond) almost never outlive one. Measured on W3 at 40k q/s (p99 of the last
// 5 s of 8 s runs): 4 MB 1.5-3.1 ms, 8 MB 2.5-6.2 ms, 16 MB 4.0-8.9 ms, with no difference in
// throughput beyond run-to-run noise.
//
// --single-threaded-gc: V8's GC helper threads (parallel scavenge, concurrent marking and
// sweeping) run at the DNS thread's priority and, on a one-core machine or a service pinned
// to one core, take that core from it in the middle of a burst; the DNS thread then waits for
// them. With every collection on the DNS thread itself the pauses are short (a 4 MB young
// generation) and the CPU is the same. Measured on one core, W3 at 40k q/s, --history off:
// p99 17-23 ms with the helpers, 2.7-4.7 ms without; saturated W3 67,500 -> 69,600-73,700 q/s
// (docs/performance.md, "After the latest run: GC threads, ...").
export const NODE_FLAGS = ['--min-semi-space-size=4', '--max-semi-space-size=4', '--single-threaded-gc'] as const;
