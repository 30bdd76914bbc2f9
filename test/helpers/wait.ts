/**
 * Waits for a condition instead of sleeping: `probe` is asked every `every` ms until it returns a
 * value (not undefined), or the deadline passes and the test fails saying what it waited for.
 */
export async function until<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  ms = 30_000,
  every = 25,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what} not reached in ${ms} ms`);
    await new Promise((r) => setTimeout(r, every));
  }
}
