// The dashboard's sign-in: a token pasted or carried in the URL fragment (`#token=<jwt>`, which a
// browser never sends to a server), kept in sessionStorage so it survives hash routing and a
// reload but not the tab. The payload is decoded for display and the admin view only; the
// server verifies every request.

const KEY = 'taskwire.token';

export interface Session {
  token: string;
  user: string;
  admin: boolean;
  /** Expiry in ms since the epoch, if the token has one. */
  expiresAt: number | null;
}

function decode(token: string): Session | null {
  const part = token.split('.')[1];
  if (!part) return null;
  try {
    const json = atob(part.replace(/-/g, '+').replace(/_/g, '/'));
    const claims = JSON.parse(json) as { sub?: unknown; role?: unknown; exp?: unknown };
    if (typeof claims.sub !== 'string' || claims.sub === '') return null;
    return {
      token,
      user: claims.sub,
      admin: claims.role === 'admin',
      expiresAt: typeof claims.exp === 'number' ? claims.exp * 1000 : null,
    };
  } catch {
    return null;
  }
}

/** Takes a token from the fragment (and removes it from the address bar), else the stored one. */
export function restoreSession(): Session | null {
  const match = /(?:^#|&)token=([\w-]+\.[\w-]+\.[\w-]+)/.exec(location.hash);
  if (match) {
    const session = decode(match[1]);
    history.replaceState(null, '', `${location.pathname}${location.search}#/`);
    if (session) {
      sessionStorage.setItem(KEY, session.token);
      return session;
    }
  }
  const stored = sessionStorage.getItem(KEY);
  const session = stored ? decode(stored) : null;
  if (session?.expiresAt && session.expiresAt < Date.now()) {
    sessionStorage.removeItem(KEY);
    return null;
  }
  return session;
}

/** Signs in with a pasted token; null when it is not a JWT with a `sub`. */
export function signIn(token: string): Session | null {
  const session = decode(token.trim());
  if (session) sessionStorage.setItem(KEY, session.token);
  return session;
}

export function signOut(): void {
  sessionStorage.removeItem(KEY);
}
