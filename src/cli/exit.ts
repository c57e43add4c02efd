// The command line's exit codes (on their own so that `start` loads none of the client commands).
export const EXIT = {
  ok: 0,
  /** A watched task failed or was cancelled, or the server refused the request (422, 409, 429, 5xx). */
  failed: 1,
  unreachable: 2,
  unauthorized: 3,
  notFound: 4,
  usage: 64,
  interrupted: 130,
} as const;
