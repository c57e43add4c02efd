// The auth part's public face.

export { OriginPolicy } from './origins.ts';
export { loadOrCreateSecret, SECRET_FILE } from './secret.ts';
export { ADMIN_ROLE, type Identity, TokenError, Tokens } from './tokens.ts';
