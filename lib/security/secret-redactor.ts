/**
 * Keeps passwords out of messages and logs. Config loading registers every password it sees;
 * `redactSecrets` replaces registered secrets and any `scheme://user:password@` userinfo.
 * Secrets shorter than MIN_SECRET_LENGTH are not registered (replacing every "ab" in a message
 * would make it unreadable); connection-string userinfo is still masked by pattern.
 */
const MIN_SECRET_LENGTH = 4;
const MASK = '***';
const URL_USERINFO = /([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*):[^@/\s]*@/gi;

const secrets = new Set<string>();

export function registerSecret(secret: string | undefined | null): void {
  if (typeof secret === 'string' && secret.length >= MIN_SECRET_LENGTH) secrets.add(secret);
}

export function redactSecrets(text: string): string {
  let redacted = text.replace(URL_USERINFO, `$1:${MASK}@`);
  for (const secret of secrets) {
    if (redacted.includes(secret)) redacted = redacted.split(secret).join(MASK);
  }
  return redacted;
}
