// Token verification and minting: JWT HS256 with `sub` = the user id, `exp` honoured when present.
// Anything else (alg none, another algorithm, a bad signature, no sub, expired) is refused.
import { errors, jwtVerify, SignJWT } from 'jose';
import { isStorableString } from '../contract/storable.ts';

export interface Identity {
  userId: string;
}

export class TokenError extends Error {
  override name = 'TokenError';
}

/** Verified tokens remembered (a client sends the same bearer token on every request). */
const CACHE_SIZE = 10_000;
/** Even a token without `exp` is verified again after this long. */
const CACHE_TTL_MS = 10 * 60_000;

export class Tokens {
  readonly #key: Uint8Array;
  /** token -> who it is and until when it may be trusted without checking the HMAC again. */
  readonly #verified = new Map<string, { userId: string; until: number }>();

  constructor(secret: string) {
    if (secret.length < 16) throw new Error('the auth secret must be at least 16 characters');
    this.#key = new TextEncoder().encode(secret);
  }

  async verify(token: string | undefined | null): Promise<Identity> {
    if (!token) throw new TokenError('missing token');
    const now = Date.now();
    const known = this.#verified.get(token);
    if (known && known.until > now) return { userId: known.userId };
    try {
      const { payload } = await jwtVerify(token, this.#key, { algorithms: ['HS256'] });
      const sub = payload.sub;
      // The sub becomes a task's owner column: one PostgreSQL can't store would fail every write.
      if (typeof sub !== 'string' || sub.length === 0 || sub.length > 200 || !isStorableString(sub)) {
        throw new TokenError('token has no valid sub claim');
      }
      const until = Math.min(now + CACHE_TTL_MS, payload.exp === undefined ? Infinity : payload.exp * 1000);
      if (this.#verified.size >= CACHE_SIZE) this.#verified.delete(this.#verified.keys().next().value!);
      this.#verified.set(token, { userId: sub, until });
      return { userId: sub };
    } catch (err) {
      if (err instanceof TokenError) throw err;
      if (err instanceof errors.JWTExpired) throw new TokenError('token expired');
      throw new TokenError('invalid token');
    }
  }

  /** Mints a token for `userId`, valid for `ttlSeconds` (none: no expiry). */
  async mint(userId: string, ttlSeconds?: number): Promise<string> {
    let jwt = new SignJWT({})
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(userId)
      .setIssuedAt();
    if (ttlSeconds !== undefined) jwt = jwt.setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds);
    return jwt.sign(this.#key);
  }
}
