// Bounded waiting for tests: poll a condition until it holds or the deadline passes.
export async function waitFor<T>(
  check: () => T | Promise<T>,
  what: string,
  timeoutMs = 10_000,
  everyMs = 10,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Collects a topic's events through the service, as a socket would receive them. */
export function recorder() {
  const events: { name: string; payload: any }[] = [];
  let lost = 0;
  return {
    events,
    get lost() {
      return lost;
    },
    sub: {
      deliver(event: { name: string; payload: any }) {
        events.push({ name: event.name, payload: event.payload });
      },
      lost() {
        lost += 1;
      },
    },
  };
}
