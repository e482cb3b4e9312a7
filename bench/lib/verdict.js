// When a line of #17 cannot be met in a run: the issue asks for "blocked", with the measurement that
// proves it, rather than a bare ❌.

/**
 * The `blocked` field of a row whose target is a ratio to a reference that does not do all of the
 * work: `floor_s` is a measured floor of the disk work mram cannot avoid (reading the file it hashes,
 * reading the input it extracts). When even that floor takes longer than the target allows
 * (`limit_s / target`), no program could meet the line in this run. Returns {} otherwise.
 */
export function blockedByDisk({ ratio, target, limit_s, floor_s, floor, mramOverFloor }) {
  if (!(ratio < target) || !(floor_s > limit_s / target)) return {};
  return { blocked: `by the disk: ${floor} took ${floor_s.toFixed(2)} s, over the ${(limit_s / target).toFixed(2)} s the target allows; mram ${mramOverFloor.toFixed(2)}× of that` };
}
