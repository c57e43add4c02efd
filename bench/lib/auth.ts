// The benchmark's fixed HS256 secret and token minting (the same JWTs taskwire's `token` command makes).
import { SignJWT } from 'jose';

export const BENCH_SECRET = 'taskwire-bench-secret-0123456789';

const key = new TextEncoder().encode(BENCH_SECRET);

export function mintToken(userId: string, ttlSeconds = 24 * 3600): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(userId)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
    .sign(key);
}
