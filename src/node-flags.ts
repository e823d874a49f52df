// The V8 flags `sinkhole serve` runs with (package.json's start script, the wrapper that
// systemd/install.sh writes, and the benchmark all pass them; a test keeps them the same).
//
// Why: V8 starts the young generation small, grows it under load and shrinks it again when
// the load pauses. While it is small, objects of queries still in flight are promoted to the
// old generation, whose mark-compact pauses (5-20 ms) were the W3 p99 at 40k queries/s.
// At its full size (16 MB, Node 20's maximum on 64-bit) from the start, almost nothing a
// query allocates outlives a scavenge: measured, one mark-compact in 8 s instead of five.
export const NODE_FLAGS = ['--min-semi-space-size=16', '--max-semi-space-size=16'] as const;
