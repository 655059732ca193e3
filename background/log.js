// @ts-check
// The worker's one way to log a failure: what failed, never a key or
// message content.

/** @param {unknown} err */
export function report(err) {
  console.warn("tether:", errorMessage(err));
}

/**
 * @param {unknown} err
 * @returns {string}
 */
export function errorMessage(err) {
  return err instanceof Error ? err.message : String(err);
}
