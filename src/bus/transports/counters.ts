// The counters behind every transport's stats(): plain numbers the outbox, the inbox and the
// connection code increment. No logic beyond a snapshot.
import type { TransportStats } from '../transport.ts';

export class Counters implements Required<TransportStats> {
  framesOut = 0;
  framesIn = 0;
  bytesOut = 0;
  bytesIn = 0;
  messagesOut = 0;
  messagesIn = 0;
  reconnects = 0;
  dropped = 0;
  gaps = 0;
  unsent = 0;

  snapshot(): Required<TransportStats> {
    return { ...this };
  }
}
