// When a missing batched-UDP addon is a failure rather than a skip.
/**
 * CI builds the addon (npm ci), so there a missing addon fails the test — except in .ci/run's
 * second pass, which turns it off on purpose (SINKHOLE_BATCH_UDP=off) to test the node:dgram
 * fallback. Outside CI a machine without a compiler only skips.
 */
export function addonRequired(): boolean {
  return Boolean(process.env.CI) && process.env.SINKHOLE_BATCH_UDP !== 'off';
}
