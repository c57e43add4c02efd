// The auth part's public face.

export { OriginPolicy } from './origins.ts';
export { loadOrCreateSecret, SECRET_FILE } from './secret.ts';
export { type Identity, TokenError, Tokens } from './tokens.ts';
